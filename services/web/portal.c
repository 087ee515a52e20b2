/*  The citizens' portal: server-rendered pages in Chinese that work without JavaScript.
    Every page is one or two calls to the query service, made as the signed-in user when the
    browser holds the session cookie (HttpOnly, SameSite=Lax: another site's form cannot
    act with it). Accessibility: one <h1> per page, labels on every input, a skip link,
    visible focus, table headers with scope, text contrast above WCAG AA. */
#include "web.h"

#include "common/codelist.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PREVIEW 20

static const char *s_js(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static const char *s_label(const odp_codelist_t *cl, const char *code)
{
    for (size_t i = 0; cl && i < cl->n; i++)
        if (strcmp(cl->codes[i].code, code) == 0)
            return cl->codes[i].label;
    return code;
}

static void s_head(w_req_t *r, odp_buf_t *b, const char *title)
{
    w_bprintf(b, "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    w_html(b, title);
    w_bprintf(b,
              " - 政务数据开放平台</title><style>"
              "body{font-family:sans-serif;margin:0;color:#1a1a1a;background:#fff;line-height:1.6}"
              "header,main,footer{padding:0 1rem;max-width:64rem;margin:auto}"
              "header{border-bottom:2px solid #0b4f8a}nav a{margin-right:1rem}"
              "a{color:#0b4f8a}a:focus,button:focus,input:focus,select:focus,textarea:focus"
              "{outline:3px solid #b35c00;outline-offset:2px}"
              ".skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff}"
              "table{border-collapse:collapse}th,td{border:1px solid #555;padding:.2rem .5rem}"
              "th{background:#e8eef5}.facets{float:right;width:16rem;margin-left:1rem}"
              "label{display:block;margin-top:.5rem}.error{color:#a00000;font-weight:bold}"
              "button{background:#0b4f8a;color:#fff;border:0;padding:.4rem 1rem}"
              "</style></head><body><a class=\"skip\" href=\"#main\">跳到正文</a>"
              "<header><p><strong>政务数据开放平台</strong></p><nav aria-label=\"主导航\">"
              "<a href=\"/\">首页</a><a href=\"/dataset\">数据目录</a>"
              "<a href=\"/feedback\">意见与数据需求</a>");
    if (r->token[0])
        w_bprintf(b, "<a href=\"/user\">我的</a><form method=\"post\" action=\"/user/logout\" "
                     "style=\"display:inline\"><button type=\"submit\">退出</button></form>");
    else
        w_bprintf(b, "<a href=\"/user/login\">登录</a><a href=\"/user/register\">注册</a>");
    w_bprintf(b, "</nav></header><main id=\"main\"><h1>");
    w_html(b, title);
    w_bprintf(b, "</h1>");
}

static enum MHD_Result s_page(w_req_t *r, odp_buf_t *b, unsigned status, const char *extra)
{
    w_bprintf(b,
              "</main><footer><p>开发者接口：<a href=\"/api/3/action/status_show\">CKAN API</a>，"
              "<a href=\"/catalog.jsonld\">DCAT-AP 目录</a></p></footer></body></html>\n");
    enum MHD_Result rc =
        w_send(r, status, "text/html; charset=utf-8", odp_buf_data(b), odp_buf_size(b), extra);
    odp_buf_destroy(&b);
    return rc;
}

static enum MHD_Result s_redirect(w_req_t *r, const char *to, const char *cookie)
{
    char hdr[400];
    snprintf(hdr, sizeof hdr, "Location: %s%s%s", to, cookie ? "\nSet-Cookie: " : "",
             cookie ? cookie : "");
    return w_send(r, 303, "text/plain; charset=utf-8", "", 0, hdr);
}

/*  An error page from a refused call. */
static enum MHD_Result s_refused(w_req_t *r, const char *title, odp_reply_t *rep, int st)
{
    char msg[1100], code[40];
    odp_v_cstr(&rep->err.message, msg, sizeof msg);
    odp_v_cstr(&rep->err.code, code, sizeof code);
    odp_reply_free(rep);
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, title);
    const char *what = strcmp(code, "NOT_FOUND") == 0         ? "没有找到。"
                       : strcmp(code, "UNAUTHENTICATED") == 0 ? "请先登录。"
                       : strcmp(code, "FORBIDDEN") == 0       ? "无权访问。"
                       : strcmp(code, "RATE_LIMITED") == 0 ? "请求过于频繁，请稍后再试。"
                       : st >= 500 || st == 0 ? "服务暂时不可用，请稍后再试。"
                                              : "请求有误。";
    w_bprintf(b, "<p class=\"error\" role=\"alert\">%s", what);
    w_html(b, msg);
    w_bprintf(b, "</p>");
    unsigned status = st == 0 ? 503 : st == 401 ? 403 : (unsigned)st;
    return s_page(r, b, status >= 400 ? status : 400, NULL);
}

static json_t *s_call(w_req_t *r, const char *cmd, json_t *body, odp_reply_t *rep, int *st)
{
    *st = w_call(r, cmd, body, rep);
    if (*st != 200)
        return NULL;
    json_t *j = odp_json_from_msgpack(&rep->obj);
    odp_reply_free(rep);
    return j;
}

static void s_search_form(odp_buf_t *b, const char *q)
{
    w_bprintf(b, "<form method=\"get\" action=\"/dataset\" role=\"search\"><label for=\"q\">"
                 "搜索数据（标题、摘要、关键词）</label><input id=\"q\" name=\"q\" type=\"search\" "
                 "size=\"40\" value=\"");
    w_html(b, q);
    w_bprintf(b, "\"> <button type=\"submit\">搜索</button></form>");
}

/*  ---- pages ------------------------------------------------------------------------------- */

static void s_hit(odp_buf_t *b, json_t *hit)
{
    w_bprintf(b, "<li><a href=\"/dataset/");
    w_urlenc(b, s_js(hit, "resource"));
    w_bprintf(b, "\">");
    w_html(b, s_js(hit, "title"));
    w_bprintf(b, "</a> <small>（");
    w_html(b, s_js(hit, "department_name"));
    w_bprintf(b, "，");
    w_html(b, s_label(&odp_cl_open_type, s_js(hit, "open_type")));
    w_bprintf(b, "）</small><br>");
    w_html(b, s_js(hit, "summary"));
    w_bprintf(b, "</li>");
}

static const char *const s_facet_names[][2] = {
    {"domain", "领域"}, {"department", "部门"}, {"open_type", "开放类型"}, {"format", "格式"}};

static enum MHD_Result s_results(w_req_t *r, const char *fixed_dept)
{
    const char *q = w_param(r, "q");
    int64_t page;
    char why[120];
    if (w_param_int(r, "page", 1, 1, 1000, &page, why, sizeof why) < 0)
        page = 1;
    json_t *body =
        json_pack("{s:i,s:I,s:[s,s,s,s],s:i}", "rows", 20, "start", (json_int_t)((page - 1) * 20),
                  "facet_field", "domain", "department", "open_type", "format", "facet_limit", 20);
    if (q && *q)
        json_object_set_new(body, "q", json_string(q));
    odp_buf_t *fq = odp_buf_new(), *keep = odp_buf_new();
    for (size_t i = 0; i < 4; i++) {
        const char *v = i == 1 && fixed_dept ? fixed_dept : w_param(r, s_facet_names[i][0]);
        if (!v || !*v || strchr(v, '"'))
            continue;
        w_bprintf(fq, "%s%s:\"%s\"", odp_buf_size(fq) ? " " : "", s_facet_names[i][0], v);
        if (!(i == 1 && fixed_dept)) {
            w_bprintf(keep, "&%s=", s_facet_names[i][0]);
            w_urlenc(keep, v);
        }
    }
    if (odp_buf_size(fq))
        json_object_set_new(body, "fq", json_string(odp_buf_data(fq)));
    odp_buf_destroy(&fq);
    odp_reply_t rep;
    int st;
    json_t *j = s_call(r, "catalogue.search", body, &rep, &st);
    if (!j) {
        odp_buf_destroy(&keep);
        return s_refused(r, "数据目录", &rep, st);
    }
    odp_buf_t *b = odp_buf_new();
    if (fixed_dept) {
        json_t *first = json_array_get(json_object_get(j, "results"), 0);
        s_head(r, b, first ? s_js(first, "department_name") : fixed_dept);
        w_bprintf(b, "<p>部门代码 ");
        w_html(b, fixed_dept);
        w_bprintf(b, "，开放数据 %" JSON_INTEGER_FORMAT " 项。</p>",
                  json_integer_value(json_object_get(j, "count")));
    } else {
        s_head(r, b, "数据目录");
        s_search_form(b, q ? q : "");
    }
    w_bprintf(b, "<aside class=\"facets\" aria-label=\"筛选\">");
    for (size_t i = 0; i < 4; i++) {
        json_t *items = json_object_get(
            json_object_get(json_object_get(j, "search_facets"), s_facet_names[i][0]), "items");
        w_bprintf(b, "<h2>%s</h2><ul>", s_facet_names[i][1]);
        size_t k;
        json_t *it;
        json_array_foreach(items, k, it)
        {
            w_bprintf(b, "<li><a href=\"/dataset?q=");
            w_urlenc(b, q ? q : "");
            w_bprintf(b, "%s&%s=", odp_buf_data(keep), s_facet_names[i][0]);
            w_urlenc(b, s_js(it, "name"));
            w_bprintf(b, "\">");
            w_html(b,
                   i == 0 ? s_label(&odp_cl_domain, s_js(it, "name")) : s_js(it, "display_name"));
            w_bprintf(b, "</a> (%" JSON_INTEGER_FORMAT ")</li>",
                      json_integer_value(json_object_get(it, "count")));
        }
        w_bprintf(b, "</ul>");
    }
    w_bprintf(b, "</aside>");
    json_int_t count = json_integer_value(json_object_get(j, "count"));
    w_bprintf(b,
              "<p role=\"status\">找到 %" JSON_INTEGER_FORMAT " 项数据。</p><ol start=\"%" PRId64
              "\" id=\"results\">",
              count, (page - 1) * 20 + 1);
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(j, "results"), i, hit) s_hit(b, hit);
    w_bprintf(b, "</ol><nav aria-label=\"分页\">");
    if (page > 1 || page * 20 < count) {
        for (int d = -1; d <= 1; d += 2) {
            if ((d < 0 && page == 1) || (d > 0 && page * 20 >= count))
                continue;
            w_bprintf(b, "<a href=\"?q=");
            w_urlenc(b, q ? q : "");
            w_bprintf(b, "%s&page=%" PRId64 "\">%s</a> ", odp_buf_data(keep), page + d,
                      d < 0 ? "上一页" : "下一页");
        }
    }
    w_bprintf(b, "</nav>");
    odp_buf_destroy(&keep);
    json_decref(j);
    return s_page(r, b, 200, NULL);
}

static enum MHD_Result s_home(w_req_t *r)
{
    odp_reply_t rep;
    int st;
    json_t *j =
        s_call(r, "catalogue.search",
               json_pack("{s:i,s:s,s:[s,s],s:i}", "rows", 5, "sort", "metadata_modified desc",
                         "facet_field", "domain", "department", "facet_limit", 30),
               &rep, &st);
    if (!j)
        return s_refused(r, "首页", &rep, st);
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, "开放数据，便民利企");
    s_search_form(b, "");
    w_bprintf(b, "<h2>按领域浏览</h2><ul>");
    size_t i;
    json_t *it;
    json_array_foreach(
        json_object_get(json_object_get(json_object_get(j, "search_facets"), "domain"), "items"), i,
        it)
    {
        w_bprintf(b, "<li><a href=\"/dataset?domain=");
        w_urlenc(b, s_js(it, "name"));
        w_bprintf(b, "\">");
        w_html(b, s_label(&odp_cl_domain, s_js(it, "name")));
        w_bprintf(b, "</a> (%" JSON_INTEGER_FORMAT ")</li>",
                  json_integer_value(json_object_get(it, "count")));
    }
    w_bprintf(b, "</ul><h2>按部门浏览</h2><ul>");
    json_array_foreach(
        json_object_get(json_object_get(json_object_get(j, "search_facets"), "department"),
                        "items"),
        i, it)
    {
        w_bprintf(b, "<li><a href=\"/organization/");
        w_urlenc(b, s_js(it, "name"));
        w_bprintf(b, "\">");
        w_html(b, s_js(it, "name"));
        w_bprintf(b, "</a> (%" JSON_INTEGER_FORMAT ")</li>",
                  json_integer_value(json_object_get(it, "count")));
    }
    w_bprintf(b, "</ul><h2>最近更新</h2><ul>");
    json_array_foreach(json_object_get(j, "results"), i, it) s_hit(b, it);
    w_bprintf(b, "</ul>");
    json_decref(j);
    return s_page(r, b, 200, NULL);
}

static void s_row(odp_buf_t *b, const char *name, const char *value)
{
    w_bprintf(b, "<tr><th scope=\"row\">%s</th><td>", name);
    w_html(b, value);
    w_bprintf(b, "</td></tr>");
}

static void s_apply_form(odp_buf_t *b, const char *res)
{
    w_bprintf(b, "<form method=\"post\" action=\"/dataset/");
    w_urlenc(b, res);
    w_bprintf(b, "/apply\"><label for=\"purpose\">用途</label><textarea id=\"purpose\" "
                 "name=\"purpose\" required rows=\"3\" cols=\"50\"></textarea>"
                 "<label for=\"scope\">所需字段与范围</label><input id=\"scope\" name=\"scope\" "
                 "required size=\"50\"><label for=\"period_from\">使用期限 自（YYYY-MM-DD）</label>"
                 "<input id=\"period_from\" name=\"period_from\" type=\"date\" required>"
                 "<label for=\"period_to\">至</label><input id=\"period_to\" name=\"period_to\" "
                 "type=\"date\" required><p><button type=\"submit\">提交申请</button></p></form>");
}

static enum MHD_Result s_dataset(w_req_t *r, const char *res)
{
    odp_reply_t rep;
    int st;
    json_t *e = s_call(r, "entry.show", json_pack("{s:s}", "resource", res), &rep, &st);
    if (!e)
        return s_refused(r, "数据", &rep, st);
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, s_js(e, "title"));
    w_bprintf(b, "<p>");
    w_html(b, s_js(e, "summary"));
    w_bprintf(b, "</p><h2>基本信息</h2><table><tbody>");
    s_row(b, "资源代码", res);
    w_bprintf(b, "<tr><th scope=\"row\">提供部门</th><td><a href=\"/organization/");
    w_urlenc(b, s_js(e, "department"));
    w_bprintf(b, "\">");
    w_html(b, s_js(e, "department_name"));
    w_bprintf(b, "</a></td></tr>");
    s_row(b, "领域", s_label(&odp_cl_domain, s_js(e, "domain")));
    s_row(b, "开放类型", s_label(&odp_cl_open_type, s_js(e, "open_type")));
    s_row(b, "更新周期", s_label(&odp_cl_update_cycle, s_js(e, "update_cycle")));
    s_row(b, "联系方式", s_js(e, "contact"));
    s_row(b, "更新时间", s_js(e, "modified_at"));
    if (*s_js(e, "access_conditions"))
        s_row(b, "开放条件", s_js(e, "access_conditions"));
    w_bprintf(b, "</tbody></table>");
    json_t *fields = json_object_get(e, "fields");
    if (json_array_size(fields)) {
        w_bprintf(b, "<h2>数据字典</h2><table><thead><tr><th scope=\"col\">字段</th>"
                     "<th scope=\"col\">类型</th><th scope=\"col\">说明</th></tr></thead><tbody>");
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f)
        {
            w_bprintf(b, "<tr><td>");
            w_html(b, s_js(f, "name"));
            w_bprintf(b, "</td><td>");
            w_html(b, s_js(f, "type"));
            w_bprintf(b, "</td><td>");
            w_html(b, s_js(f, "description"));
            w_bprintf(b, "</td></tr>");
        }
        w_bprintf(b, "</tbody></table>");
    }
    bool may = json_is_true(json_object_get(e, "may_read"));
    w_bprintf(b, "<h2>版本与下载</h2><table><thead><tr><th scope=\"col\">版本</th><th "
                 "scope=\"col\">行数</th><th scope=\"col\">发布时间</th><th scope=\"col\">下载"
                 "</th></tr></thead><tbody>");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(e, "versions"), i, v)
    {
        json_int_t ver = json_integer_value(json_object_get(v, "version"));
        w_bprintf(
            b, "<tr><td>第 %" JSON_INTEGER_FORMAT " 版%s</td><td>%" JSON_INTEGER_FORMAT "</td><td>",
            ver, strcmp(s_js(v, "state"), "current") == 0 ? "（当前）" : "",
            json_integer_value(json_object_get(v, "rows")));
        w_html(b, s_js(v, "released_at"));
        w_bprintf(b, "</td><td>");
        static const char *const fm[] = {"csv", "json", "xml", "tsv"};
        for (size_t k = 0; may && k < 4; k++) {
            w_bprintf(b, "<a href=\"/datastore/dump/");
            w_urlenc(b, res);
            w_bprintf(b, "-v%" JSON_INTEGER_FORMAT "?format=%s%s\" download>%s</a> ", ver, fm[k],
                      k == 0 ? "&amp;bom=true" : "", fm[k]);
        }
        if (!may)
            w_bprintf(b, "需申请");
        w_bprintf(b, "</td></tr>");
    }
    w_bprintf(b, "</tbody></table>");
    if (may) {
        int64_t page;
        char why[120];
        if (w_param_int(r, "page", 1, 1, 5000, &page, why, sizeof why) < 0)
            page = 1;
        odp_reply_t dr;
        int ds;
        json_t *rows =
            s_call(r, "datastore.search",
                   json_pack("{s:s,s:i,s:I,s:s}", "resource", res, "limit", S_PREVIEW, "offset",
                             (json_int_t)((page - 1) * S_PREVIEW), "records_format", "lists"),
                   &dr, &ds);
        if (rows) {
            json_int_t total = json_integer_value(json_object_get(rows, "total"));
            w_bprintf(b,
                      "<h2 id=\"preview\">数据预览</h2><p>共 %" JSON_INTEGER_FORMAT
                      " 行，第 %" PRId64 " 页。</p><div style=\"overflow-x:auto\"><table "
                      "id=\"preview-table\"><thead><tr>",
                      total, page);
            size_t k;
            json_t *f;
            json_array_foreach(json_object_get(rows, "fields"), k, f)
            {
                w_bprintf(b, "<th scope=\"col\">");
                w_html(b, s_js(f, "id"));
                w_bprintf(b, "</th>");
            }
            w_bprintf(b, "</tr></thead><tbody>");
            json_t *row;
            json_array_foreach(json_object_get(rows, "records"), k, row)
            {
                w_bprintf(b, "<tr>");
                size_t c;
                json_t *cell;
                json_array_foreach(row, c, cell)
                {
                    char *t = json_is_string(cell) ? strdup(json_string_value(cell))
                              : json_is_null(cell) ? strdup("")
                                                   : json_dumps(cell, JSON_ENCODE_ANY);
                    w_bprintf(b, "<td>");
                    w_html(b, t);
                    w_bprintf(b, "</td>");
                    free(t);
                }
                w_bprintf(b, "</tr>");
            }
            w_bprintf(b, "</tbody></table></div><nav aria-label=\"预览分页\">");
            if (page > 1)
                w_bprintf(b, "<a href=\"?page=%" PRId64 "#preview\" rel=\"prev\">上一页</a> ",
                          page - 1);
            if (page * S_PREVIEW < total)
                w_bprintf(b, "<a href=\"?page=%" PRId64 "#preview\" rel=\"next\">下一页</a>",
                          page + 1);
            w_bprintf(b, "</nav>");
            json_decref(rows);
        } else
            odp_reply_free(&dr);
    } else {
        const char *why = s_js(e, "why");
        w_bprintf(b, "<h2>如何获取</h2><p>%s",
                  strstr(why, "expired") ? "您的授权已过期，请重新申请"
                  : r->token[0]          ? "您尚未获得授权"
                                         : "请先登录");
        w_bprintf(b,
                  "。本数据有条件开放：登录后填写用途、范围和期限提交申请，提供部门审核通过后即可"
                  "预览和下载。</p>");
        if (r->token[0])
            s_apply_form(b, res);
        else
            w_bprintf(b, "<p><a href=\"/user/login\">登录</a>或<a href=\"/user/register\">注册"
                         "</a>后申请。</p>");
    }
    w_bprintf(b, "<p><a href=\"/feedback?resource=");
    w_urlenc(b, res);
    w_bprintf(b, "\">对本数据提意见或纠错</a></p>");
    json_decref(e);
    return s_page(r, b, 200, NULL);
}

static enum MHD_Result s_apply(w_req_t *r, const char *res)
{
    json_t *body = json_pack("{s:s}", "resource", res);
    static const char *const f[] = {"purpose", "scope", "period_from", "period_to"};
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(body, f[i], json_string(w_param(r, f[i]) ? w_param(r, f[i]) : ""));
    odp_reply_t rep;
    int st;
    json_t *j = s_call(r, "application.submit", body, &rep, &st);
    if (!j)
        return s_refused(r, "申请数据", &rep, st);
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, "申请已提交");
    w_bprintf(b,
              "<p role=\"status\">申请编号 %" JSON_INTEGER_FORMAT
              "，状态：已提交，等待提供部门审核。"
              "</p><p><a href=\"/user\">查看我的申请</a></p>",
              json_integer_value(json_object_get(j, "id")));
    json_decref(j);
    return s_page(r, b, 200, NULL);
}

static enum MHD_Result s_form(w_req_t *r, const char *title, const char *action, bool signup,
                              const char *error)
{
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, title);
    if (error) {
        w_bprintf(b, "<p class=\"error\" role=\"alert\">");
        w_html(b, error);
        w_bprintf(b, "</p>");
    }
    w_bprintf(b,
              "<form method=\"post\" action=\"%s\"><label for=\"name\">用户名</label>"
              "<input id=\"name\" name=\"name\" required autocomplete=\"username\">",
              action);
    if (signup)
        w_bprintf(b, "<label for=\"fullname\">姓名（可选）</label><input id=\"fullname\" "
                     "name=\"fullname\">");
    w_bprintf(b,
              "<label for=\"password\">密码%s</label><input id=\"password\" name=\"password\" "
              "type=\"password\" required autocomplete=\"%s\"><p><button type=\"submit\">%s"
              "</button></p></form>",
              signup ? "（至少 8 位）" : "", signup ? "new-password" : "current-password", title);
    return s_page(r, b, error ? 422 : 200, NULL);
}

static enum MHD_Result s_signin(w_req_t *r, bool signup)
{
    const char *name = w_param(r, "name"), *pw = w_param(r, "password");
    const char *title = signup ? "注册" : "登录",
               *action = signup ? "/user/register" : "/user/login";
    if (!name || !pw || !*name || !*pw)
        return s_form(r, title, action, signup, "请填写用户名和密码。");
    r->token[0] = '\0';
    odp_reply_t rep;
    int st;
    if (signup) {
        json_t *b = json_pack("{s:s,s:s}", "login", name, "password", pw);
        const char *full = w_param(r, "fullname");
        if (full && *full)
            json_object_set_new(b, "name", json_string(full));
        json_t *j = s_call(r, "user.signup", b, &rep, &st);
        if (!j) {
            char msg[300];
            odp_v_cstr(&rep.err.message, msg, sizeof msg);
            odp_reply_free(&rep);
            return s_form(r, title, action, true,
                          st == 409 ? "该用户名已被使用。"
                                    : "用户名为 3–64 位字母、数字或 _.@-，"
                                      "密码至少 8 位。");
        }
        json_decref(j);
    }
    json_t *j =
        s_call(r, "user.signin", json_pack("{s:s,s:s}", "login", name, "password", pw), &rep, &st);
    if (!j) {
        odp_reply_free(&rep);
        return s_form(r, "登录", "/user/login", false, "用户名或密码不正确。");
    }
    char cookie[200];
    snprintf(cookie, sizeof cookie, "odp_token=%s; Path=/; HttpOnly; SameSite=Lax",
             s_js(j, "token"));
    json_decref(j);
    return s_redirect(r, "/user", cookie);
}

static enum MHD_Result s_logout(w_req_t *r)
{
    if (r->token[0]) {
        odp_reply_t rep;
        w_call(r, "user.signout", json_object(), &rep);
        odp_reply_free(&rep);
    }
    return s_redirect(r, "/", "odp_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
}

static void s_list(odp_buf_t *b, json_t *items, const char *const *cols, const char *const *heads,
                   size_t n)
{
    if (!json_array_size(items)) {
        w_bprintf(b, "<p>暂无。</p>");
        return;
    }
    w_bprintf(b, "<table><thead><tr>");
    for (size_t c = 0; c < n; c++)
        w_bprintf(b, "<th scope=\"col\">%s</th>", heads[c]);
    w_bprintf(b, "</tr></thead><tbody>");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        w_bprintf(b, "<tr>");
        for (size_t c = 0; c < n; c++) {
            json_t *v = json_object_get(it, cols[c]);
            char *t = json_is_string(v)       ? strdup(json_string_value(v))
                      : !v || json_is_null(v) ? strdup("")
                                              : json_dumps(v, JSON_ENCODE_ANY);
            w_bprintf(b, "<td>");
            w_html(b, t);
            w_bprintf(b, "</td>");
            free(t);
        }
        w_bprintf(b, "</tr>");
    }
    w_bprintf(b, "</tbody></table>");
}

static enum MHD_Result s_me(w_req_t *r)
{
    if (!r->token[0])
        return s_redirect(r, "/user/login", NULL);
    odp_reply_t rep;
    int st;
    json_t *me = s_call(r, "user.me", json_object(), &rep, &st);
    if (!me) {
        odp_reply_free(&rep);
        return s_redirect(r, "/user/login",
                          "odp_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    }
    odp_buf_t *b = odp_buf_new();
    char title[200];
    snprintf(title, sizeof title, "我的：%s", s_js(me, "login"));
    s_head(r, b, title);
    json_decref(me);
    static const struct {
        const char *cmd, *h;
        const char *cols[6], *heads[6];
        size_t n;
    } lists[] = {
        {"application.list",
         "我的申请",
         {"id", "resource", "state", "submitted_at", "expires_at", "reason"},
         {"编号", "资源", "状态", "提交时间", "有效期至", "说明"},
         6},
        {"download.list",
         "我的下载",
         {"resource", "version", "format", "rows", "served_sha256", "started_at"},
         {"资源", "版本", "格式", "行数", "SHA-256", "时间"},
         6},
        {"feedback.list",
         "我的意见与需求",
         {"id", "kind", "resource", "title", "state", "received_at"},
         {"编号", "类型", "资源", "标题", "状态", "时间"},
         6},
    };
    for (size_t l = 0; l < 3; l++) {
        w_bprintf(b, "<h2>%s</h2>", lists[l].h);
        json_t *j = s_call(r, lists[l].cmd, json_object(), &rep, &st);
        if (!j) {
            odp_reply_free(&rep);
            w_bprintf(b, "<p class=\"error\">暂时无法读取。</p>");
            continue;
        }
        s_list(b, json_object_get(j, "items"), lists[l].cols, lists[l].heads, lists[l].n);
        json_decref(j);
    }
    return s_page(r, b, 200, NULL);
}

static enum MHD_Result s_feedback(w_req_t *r)
{
    const char *res = w_param(r, "resource");
    if (strcmp(r->method, "POST") == 0) {
        json_t *body = json_object();
        static const char *const f[] = {"kind", "resource", "title", "text", "url"};
        for (size_t i = 0; i < 5; i++) {
            const char *v = w_param(r, f[i]);
            if (v && *v)
                json_object_set_new(body, f[i], json_string(v));
        }
        const char *rating = w_param(r, "rating");
        if (rating && *rating)
            json_object_set_new(body, "rating", json_integer(atoi(rating)));
        odp_reply_t rep;
        int st;
        json_t *j = s_call(r, "feedback.submit", body, &rep, &st);
        if (!j)
            return s_refused(r, "意见与数据需求", &rep, st);
        odp_buf_t *b = odp_buf_new();
        s_head(r, b, "已收到");
        w_bprintf(b,
                  "<p role=\"status\">编号 %" JSON_INTEGER_FORMAT "，已转交负责部门。</p>"
                  "<p><a href=\"/user\">查看处理进度</a></p>",
                  json_integer_value(json_object_get(j, "id")));
        json_decref(j);
        return s_page(r, b, 200, NULL);
    }
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, "意见与数据需求");
    if (!r->token[0]) {
        w_bprintf(b, "<p>请先<a href=\"/user/login\">登录</a>。</p>");
        return s_page(r, b, 200, NULL);
    }
    w_bprintf(b, "<form method=\"post\" action=\"/feedback\"><label for=\"kind\">类型</label>"
                 "<select id=\"kind\" name=\"kind\"><option value=\"request\">数据需求"
                 "</option><option value=\"comment\">评论</option><option value=\"report\">纠错"
                 "</option><option value=\"rating\">评分</option><option value=\"app\">应用"
                 "</option></select><label for=\"resource\">资源代码（数据需求可不填）</label>"
                 "<input id=\"resource\" name=\"resource\" value=\"");
    w_html(b, res ? res : "");
    w_bprintf(b, "\"><label for=\"title\">标题</label><input id=\"title\" name=\"title\" "
                 "size=\"50\"><label for=\"text\">内容</label><textarea id=\"text\" name=\"text\" "
                 "rows=\"5\" cols=\"50\"></textarea><label for=\"rating\">评分（1–5，仅评分）"
                 "</label><input id=\"rating\" name=\"rating\" type=\"number\" min=\"1\" "
                 "max=\"5\"><label for=\"url\">应用地址（仅应用）</label><input id=\"url\" "
                 "name=\"url\" type=\"url\" size=\"50\"><p><button type=\"submit\">提交</button>"
                 "</p></form>");
    return s_page(r, b, 200, NULL);
}

enum MHD_Result w_portal(w_req_t *r)
{
    const char *p = r->path;
    bool post = strcmp(r->method, "POST") == 0;
    if (strcmp(p, "/") == 0)
        return s_home(r);
    if (strcmp(p, "/dataset") == 0 || strcmp(p, "/dataset/") == 0)
        return s_results(r, NULL);
    if (strncmp(p, "/dataset/", 9) == 0) {
        char res[64];
        size_t n = strcspn(p + 9, "/");
        if (n == 0 || n >= sizeof res)
            goto missing;
        snprintf(res, sizeof res, "%.*s", (int)n, p + 9);
        if (p[9 + n] == '\0')
            return s_dataset(r, res);
        if (strcmp(p + 9 + n, "/apply") == 0 && post)
            return s_apply(r, res);
        goto missing;
    }
    if (strncmp(p, "/organization/", 14) == 0 && p[14] &&
        strspn(p + 14, "0123456789") == strlen(p + 14) && strlen(p + 14) == 9)
        return s_results(r, p + 14);
    if (strcmp(p, "/user/register") == 0)
        return post ? s_signin(r, true) : s_form(r, "注册", "/user/register", true, NULL);
    if (strcmp(p, "/user/login") == 0)
        return post ? s_signin(r, false) : s_form(r, "登录", "/user/login", false, NULL);
    if (strcmp(p, "/user/logout") == 0 && post)
        return s_logout(r);
    if (strcmp(p, "/user") == 0)
        return s_me(r);
    if (strcmp(p, "/feedback") == 0)
        return s_feedback(r);
missing:;
    odp_buf_t *b = odp_buf_new();
    s_head(r, b, "页面不存在");
    w_bprintf(b, "<p><a href=\"/\">返回首页</a></p>");
    return s_page(r, b, 404, NULL);
}
