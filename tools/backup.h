/*  odpctl backup DEST / odpctl restore SRC (tools/backup.c). Exit status as odpctl's. */
#ifndef ODP_TOOLS_BACKUP_H
#define ODP_TOOLS_BACKUP_H

int odpctl_backup(const char *dest);
int odpctl_restore(const char *src);

#endif
