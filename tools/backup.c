/*  odpctl backup / restore: the whole platform in one directory (docs/operations.md).

    A backup is a directory, or a tar file of one when the name ends in .tar:
      db.dump             pg_dump -Fc of every service schema in ONE run: one transaction,
                          one snapshot, so outboxes, event counters, consumer positions and
                          the views between schemas agree with each other
      certs/public/       the public certificates (ODP_CERT_DIR)
      certs/server[_secret]  the servers' certificate (ODP_SERVER_CERT)
      certs/keys/         the services' key pairs (ODP_SERVICE_KEYS)
      settings.env        the ODP_* settings in force, passwords and URLs left out
      MANIFEST            "odp-backup 1", then "<sha256>  <path>" for every file above
    It holds secret keys, so everything is created 0700 / 0600.

    pg_dump and pg_restore run as the cluster's superuser: ODP_PG_SUPERUSER_URL (libpq's
    PGPASSWORD etc. apply), binaries from ODP_PG_BIN or PATH. Restore wants a database made
    by deploy/bootstrap.sql (roles and empty schemas) on which no service has started yet:
    it refuses one that holds any table. */
#include "tools/backup.h"

#include "common/config.h"
#include "common/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_FORMAT "odp-backup 1"

static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "odpctl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/*  Run a program to completion; its output goes where ours does. Its exit status. */
static int s_run(char *const argv[])
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "odpctl: cannot run %s: %s\n", argv[0], strerror(rc));
        return 127;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*  a, sep, b into buf. Every path here starts from one the caller checked to be shorter
    than S_PATH_MAX, so the 4 KiB buffers always hold it. */
#define S_PATH_MAX 2048
static void s_cat(char *buf, size_t size, const char *a, const char *sep, const char *b)
{
    int n = snprintf(buf, size, "%s%s%s", a, sep, b);
    if (n < 0 || (size_t)n >= size)
        abort();
}

static void s_pg_tool(const char *name, char *buf, size_t size)
{
    const char *dir = getenv("ODP_PG_BIN");
    if (dir && *dir)
        snprintf(buf, size, "%s/%s", dir, name);
    else
        snprintf(buf, size, "%s", name);
}

static bool s_is_tar(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".tar") == 0;
}

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void s_rm_tree(const char *dir)
{
    nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int s_sha256_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        odp_sha256_update(&st, buf, n);
    int bad = ferror(f);
    fclose(f);
    crypto_hash_sha256_final(&st, md);
    sodium_bin2hex(hex, 65, md, sizeof md);
    return bad ? -1 : 0;
}

/*  Copy src to dst (written beside it and renamed in: a certificate directory must never
    show a half-written file), with mode. 0 / -1 after saying why. */
static int s_copy(const char *src, const char *dst, mode_t mode)
{
    char tmp[4096];
    s_cat(tmp, sizeof tmp, dst, "", ".odpctl-tmp");
    FILE *in = fopen(src, "rb");
    if (!in)
        return -s_fail("cannot read %s: %s", src, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!out) {
        fclose(in);
        return -s_fail("cannot write %s: %s", tmp, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            bad = 1;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    if (bad || fchmodat(AT_FDCWD, tmp, mode, 0) < 0 || rename(tmp, dst) < 0) {
        unlink(tmp);
        return -s_fail("cannot write %s: %s", dst, strerror(errno));
    }
    return 0;
}

/*  mkdir -p: path and the directories above it, new ones with mode. 0 / -1 (errno). */
static int s_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    s_cat(buf, sizeof buf, path, "", "");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *p = c;
        if (!c)
            return 0;
    }
}

/*  Copy the regular files of a flat directory (certificate directories are flat; names
    starting with '.' are files being written). mode 0 keeps each file's own. */
static int s_copy_dir(const char *src, const char *dst, mode_t dirmode)
{
    if (s_mkdirs(dst, dirmode) < 0)
        return -s_fail("cannot create %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d)
        return -s_fail("cannot read directory %s: %s", src, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        char from[4096], to[4096];
        struct stat st;
        s_cat(from, sizeof from, src, "/", e->d_name);
        s_cat(to, sizeof to, dst, "/", e->d_name);
        if (e->d_name[0] == '.' || strstr(e->d_name, ".odpctl-tmp") || stat(from, &st) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        rc = s_copy(from, to, st.st_mode & 0777);
    }
    closedir(d);
    return rc;
}

/*  The files of the backup in dir, as paths relative to it, for the MANIFEST. */
static int s_manifest_add(FILE *m, const char *dir, const char *rel)
{
    char path[4096], hex[65];
    s_cat(path, sizeof path, dir, "/", rel);
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -s_fail("cannot read directory %s: %s", path, strerror(errno));
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char sub[4096];
            s_cat(sub, sizeof sub, rel, "/", e->d_name);
            rc = s_manifest_add(m, dir, sub);
        }
        closedir(d);
        return rc;
    }
    if (s_sha256_file(path, hex) < 0)
        return -s_fail("cannot read %s: %s", path, strerror(errno));
    fprintf(m, "%s  %s\n", hex, rel);
    return 0;
}

static bool s_secret_setting(const char *kv)
{
    return strstr(kv, "PASSWORD") || strstr(kv, "SECRET") || strstr(kv, "_URL=") ||
           strncmp(kv, "ODP_TEST", 8) == 0;
}

static int s_backup_into(const char *dir)
{
    const char *url = getenv("ODP_PG_SUPERUSER_URL");
    const char *certs = getenv("ODP_CERT_DIR"), *server = getenv("ODP_SERVER_CERT");
    const char *keys = getenv("ODP_SERVICE_KEYS");
    if (!url || !*url || !certs || !server || !keys || strlen(certs) >= S_PATH_MAX ||
        strlen(server) >= S_PATH_MAX || strlen(keys) >= S_PATH_MAX) {
        fprintf(stderr, "odpctl: backup needs ODP_PG_SUPERUSER_URL, ODP_CERT_DIR, "
                        "ODP_SERVER_CERT and ODP_SERVICE_KEYS (source var/odp.env)\n");
        return 2;
    }
    char path[4096], pg_dump[4096], dbarg[4096];
    s_pg_tool("pg_dump", pg_dump, sizeof pg_dump);
    s_cat(path, sizeof path, dir, "/", "db.dump");
    snprintf(dbarg, sizeof dbarg, "--dbname=%s", url);
    /*  Only the service schemas: the rest of the database is bootstrap.sql's. */
    char *argv[32] = {pg_dump, "--format=custom", "--no-password", dbarg, "--file", path};
    int argc = 6;
    char nargs[ODP_NSERVICES][64];
    for (int i = 0; i < ODP_NSERVICES; i++) {
        snprintf(nargs[i], sizeof nargs[i], "--schema=%s", odp_service_names[i]);
        argv[argc++] = nargs[i];
    }
    int rc = s_run(argv);
    if (rc != 0)
        return s_fail("pg_dump failed (exit %d, see above)", rc);
    s_cat(path, sizeof path, dir, "/", "certs");
    if (mkdir(path, 0700) < 0)
        return s_fail("cannot create %s: %s", path, strerror(errno));
    char sub[4096], sec[4096];
    s_cat(sub, sizeof sub, path, "/", "public");
    if (s_copy_dir(certs, sub, 0755) < 0)
        return 1;
    s_cat(sub, sizeof sub, path, "/", "keys");
    if (s_copy_dir(keys, sub, 0700) < 0)
        return 1;
    s_cat(sub, sizeof sub, path, "/", "server");
    s_cat(sec, sizeof sec, server, "", "_secret");
    if (s_copy(server, sub, 0644) < 0)
        return 1;
    s_cat(sub, sizeof sub, path, "/", "server_secret");
    if (s_copy(sec, sub, 0600) < 0)
        return 1;

    s_cat(path, sizeof path, dir, "/", "settings.env");
    FILE *f = fopen(path, "w");
    if (!f)
        return s_fail("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# ODP_* settings where the backup was made (passwords and URLs left out)\n");
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "ODP_", 4) == 0 && !s_secret_setting(*e) && !strchr(*e, '\n'))
            fprintf(f, "%s\n", *e);
    if (fclose(f) != 0)
        return s_fail("cannot write %s: %s", path, strerror(errno));

    s_cat(path, sizeof path, dir, "/", "MANIFEST");
    FILE *m = fopen(path, "w");
    if (!m)
        return s_fail("cannot write %s: %s", path, strerror(errno));
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(m, "%s\n# made %s\n", S_FORMAT, when);
    rc = s_manifest_add(m, dir, "db.dump") || s_manifest_add(m, dir, "certs") ||
         s_manifest_add(m, dir, "settings.env");
    if (fclose(m) != 0 || rc)
        return s_fail("cannot write %s", path);
    return 0;
}

int odpctl_backup(const char *dest)
{
    umask(077);
    struct stat st;
    if (strlen(dest) >= S_PATH_MAX) {
        fprintf(stderr, "odpctl: backup path too long\n");
        return 2;
    }
    if (lstat(dest, &st) == 0) {
        fprintf(stderr, "odpctl: %s exists; a backup goes to a new directory or .tar file\n", dest);
        return 2;
    }
    char dir[4096];
    bool tar = s_is_tar(dest);
    if (tar)
        s_cat(dir, sizeof dir, dest, "", ".partial");
    else
        snprintf(dir, sizeof dir, "%s", dest);
    if (mkdir(dir, 0700) < 0)
        return s_fail("cannot create %s: %s", dir, strerror(errno));
    int rc = s_backup_into(dir);
    if (rc == 0 && tar) {
        char *argv[] = {"tar", "-C", dir, "-cf", (char *)dest, ".", NULL};
        if (s_run(argv) != 0)
            rc = s_fail("tar could not write %s", dest);
    }
    if (rc != 0 || tar)
        s_rm_tree(dir);
    if (rc != 0 && tar)
        unlink(dest);
    if (rc == 0)
        printf("backup written to %s (restore with: odpctl restore %s)\n", dest, dest);
    return rc;
}

/*  Every file the MANIFEST names has its checksum, and the MANIFEST names db.dump. */
static int s_verify(const char *dir)
{
    char path[4096], line[4200];
    s_cat(path, sizeof path, dir, "/", "MANIFEST");
    FILE *m = fopen(path, "r");
    if (!m)
        return s_fail("%s is not an odp backup (no MANIFEST)", dir);
    int rc = 0, files = 0, dump = 0;
    if (!fgets(line, sizeof line, m) || strncmp(line, S_FORMAT "\n", strlen(S_FORMAT) + 1) != 0)
        rc = s_fail("%s: MANIFEST is not in format \"%s\"", dir, S_FORMAT);
    while (rc == 0 && fgets(line, sizeof line, m)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || !line[0])
            continue;
        char hex[65];
        if (strlen(line) < 67 || line[64] != ' ' || line[65] != ' ' || strstr(line, "..")) {
            rc = s_fail("MANIFEST line not understood: %s", line);
            break;
        }
        s_cat(path, sizeof path, dir, "/", line + 66);
        if (s_sha256_file(path, hex) < 0 || strncmp(hex, line, 64) != 0)
            rc = s_fail("backup damaged: %s is missing or differs from its MANIFEST checksum",
                        line + 66);
        files++;
        dump |= strcmp(line + 66, "db.dump") == 0;
    }
    fclose(m);
    if (rc == 0 && !dump)
        rc = s_fail("backup damaged: MANIFEST lists no db.dump");
    return rc;
}

/*  How many relations the service schemas hold: 0 on a freshly bootstrapped database. */
static int s_target_empty(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "odpctl: cannot connect to ODP_PG_SUPERUSER_URL: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    char list[256] = "{";
    for (int i = 0; i < ODP_NSERVICES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "",
                 odp_service_names[i]);
    strcat(list, "}");
    const char *vals[1] = {list};
    PGresult *r = PQexecParams(c,
                               "SELECT count(*) FILTER (WHERE c.oid IS NOT NULL), "
                               "count(DISTINCT n.nspname) FROM pg_namespace n LEFT JOIN pg_class "
                               "c ON c.relnamespace = n.oid WHERE n.nspname = ANY($1::text[])",
                               1, NULL, vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "odpctl: %s", PQerrorMessage(c));
        rc = 1;
    } else if (atoi(PQgetvalue(r, 0, 1)) != ODP_NSERVICES) {
        fprintf(stderr, "odpctl: the target database lacks the service schemas: bootstrap it "
                        "first (deploy/pg.sh init, or a new pgdata volume)\n");
        rc = 1;
    } else if (atoi(PQgetvalue(r, 0, 0)) != 0) {
        fprintf(stderr,
                "odpctl: the target database already holds %s odp tables; restore wants a "
                "freshly bootstrapped database on which no service has started\n",
                PQgetvalue(r, 0, 0));
        rc = 1;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/*  Settings that differ from those at backup time: the operator decides. */
static void s_compare_settings(const char *dir)
{
    char path[4096], line[4096];
    s_cat(path, sizeof path, dir, "/", "settings.env");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq)
            continue;
        *eq = '\0';
        const char *now = getenv(line);
        if (!now || strcmp(now, eq + 1) != 0)
            printf("setting %s was \"%s\" at backup time, is \"%s\" here\n", line, eq + 1,
                   now ? now : "(unset)");
    }
    fclose(f);
}

static int s_restore_from(const char *dir)
{
    const char *url = getenv("ODP_PG_SUPERUSER_URL");
    const char *certs = getenv("ODP_CERT_DIR"), *server = getenv("ODP_SERVER_CERT");
    const char *keys = getenv("ODP_SERVICE_KEYS");
    if (!url || !*url || !certs || !server || !keys || strlen(certs) >= S_PATH_MAX ||
        strlen(server) >= S_PATH_MAX || strlen(keys) >= S_PATH_MAX) {
        fprintf(stderr, "odpctl: restore needs ODP_PG_SUPERUSER_URL, ODP_CERT_DIR, "
                        "ODP_SERVER_CERT and ODP_SERVICE_KEYS of the target\n");
        return 2;
    }
    if (s_verify(dir) || s_target_empty(url))
        return 1;
    /*  Where the certificates go must be writable before the database is touched. */
    char parent[4096];
    s_cat(parent, sizeof parent, server, "", "");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    const char *dirs[] = {certs, keys, slash && slash != parent ? parent : "."};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (s_mkdirs(dirs[i], i == 0 ? 0755 : 0700) < 0 || access(dirs[i], W_OK) < 0)
            return s_fail("cannot write to %s: %s", dirs[i], strerror(errno));
    char pg_restore[4096], dbarg[4096], dump[4096];
    s_pg_tool("pg_restore", pg_restore, sizeof pg_restore);
    snprintf(dbarg, sizeof dbarg, "--dbname=%s", url);
    s_cat(dump, sizeof dump, dir, "/", "db.dump");
    /*  --clean drops the empty schemas bootstrap.sql made, so the dump's own (with their
        owners and grants) take their place; one transaction: all or nothing. */
    char *argv[] = {pg_restore,
                    "--no-password",
                    "--exit-on-error",
                    "--single-transaction",
                    "--clean",
                    "--if-exists",
                    dbarg,
                    dump,
                    NULL};
    int rc = s_run(argv);
    if (rc != 0)
        return s_fail("pg_restore failed (exit %d, see above); the target database is unchanged",
                      rc);
    char src[4096], sec[4096];
    s_cat(src, sizeof src, dir, "/", "certs/public");
    if (s_copy_dir(src, certs, 0755) < 0)
        return 1;
    s_cat(src, sizeof src, dir, "/", "certs/keys");
    if (s_copy_dir(src, keys, 0700) < 0)
        return 1;
    s_cat(src, sizeof src, dir, "/", "certs/server");
    if (s_copy(src, server, 0644) < 0)
        return 1;
    s_cat(src, sizeof src, dir, "/", "certs/server_secret");
    s_cat(sec, sizeof sec, server, "", "_secret");
    if (s_copy(src, sec, 0600) < 0)
        return 1;
    s_compare_settings(dir);
    return 0;
}

int odpctl_restore(const char *src)
{
    umask(077);
    struct stat st;
    if (strlen(src) >= S_PATH_MAX) {
        fprintf(stderr, "odpctl: backup path too long\n");
        return 2;
    }
    if (stat(src, &st) < 0) {
        fprintf(stderr, "odpctl: cannot read %s: %s\n", src, strerror(errno));
        return 2;
    }
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = s_restore_from(src);
    } else {
        char dir[] = "/tmp/odpctl-restore.XXXXXX";
        if (!mkdtemp(dir))
            return s_fail("cannot create a directory in /tmp: %s", strerror(errno));
        char *argv[] = {"tar", "-C", dir, "-xf", (char *)src, NULL};
        rc = s_run(argv) != 0 ? s_fail("%s is not a readable tar file", src) : s_restore_from(dir);
        s_rm_tree(dir);
    }
    if (rc == 0)
        printf("restored %s: database, certificates; start the services now\n", src);
    return rc;
}
