/* test_auth_basic.c — the user file, every hash scheme, the access check, the
 * directives and their inheritance, $remote_user.  Hash vectors were made with
 * `openssl passwd -1/-5/-6/-apr1 -salt Zg5alt01 'correct horse'` and, for {SHA},
 * {SSHA} and bcrypt, Python's hashlib and crypt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <crypt.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_auth_basic.h"
#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_test.h"

#define PW "correct horse"

static const char *const good[] = {
    "$1$Zg5alt01$70x6Kq4641cNen1HWG3IP/",
    "$5$Zg5alt01$pwcz.ZpsVBgdIQug2hUu24QZxqj.gOIPHUnZt3uPub2",
    "$6$Zg5alt01$yfw50JgEulPTGMQIBomcQof0W3XryrhAGPseq4hymHXSPNutLDtlGxKyI7jl3fUtVicVniaTGVD"
    "mY.HIsIMJc/",
    "$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq1",
    "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
    "{SSHA}CqSATe7bYuyyYJBoKDZVepMkPG0BAgME/g==",
    "{PLAIN}" PW,
    "$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e",
    "$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
};

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/zg_test_auth.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    zg_log_open("stderr", ZG_LOG_EMERG);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_tmp(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static zg_conf_t *empty_conf(void)
{
    char err[256];
    zg_conf_t *conf = zg_conf_load_string("/x/z.conf", "", 0, err, sizeof(err));
    assert_non_null(conf);
    return conf;
}

static void test_schemes(void **state)
{
    (void)state;
    for (size_t i = 0; i < zg_nelems(good); i++) {
        assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), good[i]), ZG_OK);
        assert_int_equal(zg_auth_basic_verify("correct hors", 12, good[i]), ZG_DECLINED);
        assert_int_equal(zg_auth_basic_verify(PW "e", strlen(PW) + 1, good[i]), ZG_DECLINED);
        assert_int_equal(zg_auth_basic_verify("", 0, good[i]), ZG_DECLINED);
    }
    /* an empty password, and a salt shorter than 8 */
    assert_int_equal(zg_auth_basic_verify("", 0, "$apr1$x$tMwYqBfQwi3FYAr0aJc8M/"), ZG_OK);
    assert_int_equal(zg_auth_basic_verify("", 0, "{PLAIN}"), ZG_OK);
    /* a wrong digest of the right length, a truncated one */
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq2"),
                     ZG_DECLINED);
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq"),
                     ZG_DECLINED);
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "{SSHA}CqSA"), ZG_DECLINED);
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "{SSHA}!!!!"), ZG_DECLINED);
    /* a NUL in the password never matches a crypt(3) hash */
    assert_int_equal(zg_auth_basic_verify("correct\0horse", 13, good[0]), ZG_DECLINED);
    /* no scheme crypt(3) can read */
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "*"), ZG_ERROR);
    assert_int_equal(zg_auth_basic_verify(PW, strlen(PW), "$9$nothing"), ZG_ERROR);
}

static void test_bcrypt_gensalt(void **state)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    const char *h;

    (void)state;
    assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof(setting)));
    memset(&cd, 0, sizeof(cd));
    h = crypt_rn("s3cret", setting, &cd, sizeof(cd));
    assert_non_null(h);
    assert_int_equal(zg_auth_basic_verify("s3cret", 6, h), ZG_OK);
    assert_int_equal(zg_auth_basic_verify("s3creT", 6, h), ZG_DECLINED);
}

static void test_file_parse(void **state)
{
    static const char text[] = "# comment\n"
                               "\n"
                               "zed:{PLAIN}z\r\n"
                               "alice:{PLAIN}first:a comment\n"
                               "nocolon\n"
                               "\r\n"
                               "#bob:{PLAIN}commented\n"
                               "bob:{PLAIN}b\n"
                               "alice:{PLAIN}second\n"
                               " spaced:{PLAIN}s\n"
                               "last:{PLAIN}l";
    char err[256];
    zg_conf_t *conf = empty_conf();
    zg_auth_basic_file_t *f;
    const zg_auth_basic_user_t *u;

    (void)state;
    f = zg_auth_basic_file_parse(conf, "/t/htpasswd", text, sizeof(text) - 1, err,
                                 sizeof(err));
    assert_non_null(f);
    assert_int_equal(f->nusers, 5);
    for (int i = 1; i < f->nusers; i++) {
        assert_true(strcmp(f->users[i - 1].user, f->users[i].user) < 0);
    }
    u = zg_auth_basic_find(f, "alice", 5);
    assert_non_null(u);
    assert_string_equal(u->hash, "{PLAIN}first"); /* the first line wins; ':' ends it */
    assert_int_equal(u->line, 4);
    u = zg_auth_basic_find(f, "zed", 3);
    assert_non_null(u);
    assert_string_equal(u->hash, "{PLAIN}z"); /* CR ends the hash */
    assert_string_equal(zg_auth_basic_find(f, "bob", 3)->hash, "{PLAIN}b");
    assert_string_equal(zg_auth_basic_find(f, "last", 4)->hash, "{PLAIN}l");
    assert_non_null(zg_auth_basic_find(f, " spaced", 7));
    assert_null(zg_auth_basic_find(f, "spaced", 6));
    assert_null(zg_auth_basic_find(f, "nocolon", 7));
    assert_null(zg_auth_basic_find(f, "#bob", 4));
    assert_null(zg_auth_basic_find(f, "ali", 3));
    assert_null(zg_auth_basic_find(f, "alicex", 6));
    assert_null(zg_auth_basic_find(f, "", 0));

    f = zg_auth_basic_file_parse(conf, "/t/empty", "", 0, err, sizeof(err));
    assert_non_null(f);
    assert_int_equal(f->nusers, 0);
    assert_null(zg_auth_basic_find(f, "a", 1));
    zg_conf_free(conf);
}

static zg_str_t names[2], values[2];

static void set_auth(const char *value)
{
    names[0] = (zg_str_t)zg_string("Authorization");
    values[0].data = value;
    values[0].len = value ? strlen(value) : 0;
    ctx.hdr_names = names;
    ctx.hdr_values = values;
    ctx.nhdrs = value ? 1 : 0;
}

static zg_cv_t *realm_cv(const char *text)
{
    char err[128];
    zg_cv_t *cv = zg_cv_compile(text, strlen(text), err, sizeof(err));
    assert_non_null(cv);
    return cv;
}

static void test_check(void **state)
{
    static const char text[] = "alice:$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq1\n"
                               "bob:$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e\n"
                               "eve:!locked\n";
    char err[256], www[ZG_AUTH_BASIC_HEADER_MAX], path[256];
    zg_conf_t *conf = empty_conf();
    zg_auth_basic_conf_t ab;
    char *log;
    int fd;

    (void)state;
    set_ip(0x7f000001);
    memset(&ab, 0, sizeof(ab));
    set_auth(NULL);
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_DECLINED);
    ab.realm = realm_cv("Admin \"zone\"");
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_DECLINED); /* no file */
    ab.file = zg_auth_basic_file_parse(conf, "/t/htpasswd", text, sizeof(text) - 1, err,
                                       sizeof(err));
    assert_non_null(ab.file);

    snprintf(path, sizeof(path), "%s/error.log", tmpdir);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(zg_log_open(path, ZG_LOG_INFO), ZG_OK);

    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    /* as nginx 1.22: the realm is written as it is */
    assert_string_equal(www, "WWW-Authenticate: Basic realm=\"Admin \"zone\"\"\r\n");
    set_auth("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="); /* alice:correct horse */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_OK);
    set_auth("bAsIc    YWxpY2U6Y29ycmVjdCBob3JzZQ"); /* padding is optional */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_OK);
    set_auth("Basic YWxpY2U6d3Jvbmc="); /* alice:wrong */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Basic bWFsbG9yeTp4"); /* mallory:x */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Basic ZXZlOng="); /* eve:x, a hash of no scheme */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Basic YWxpY2U="); /* "alice": no ':' */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Basic OnB3"); /* ":pw": no user */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Basic YWxp*2U6"); /* not base64 */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    set_auth("Bearer YWxpY2U6Y29ycmVjdCBob3JzZQ==");
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    /* bcrypt, then again from the cache, and a wrong password is still wrong */
    set_auth("Basic Ym9iOmNvcnJlY3QgaG9yc2U="); /* bob:correct horse */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_OK);
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_OK);
    set_auth("Basic Ym9iOmNvcnJlY3QgaG9yc2Y="); /* bob:correct horsf */
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    zg_auth_basic_cache_on = 0;
    set_auth("Basic Ym9iOmNvcnJlY3QgaG9yc2U=");
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_OK);
    zg_auth_basic_cache_on = 1;

    log = read_file(path);
    assert_non_null(strstr(log, "[info] "));
    assert_non_null(strstr(log, "no user/password was provided for basic authentication, "
                                "client: 127.0.0.1\n"));
    assert_non_null(strstr(log, "user \"alice\": password mismatch, client: 127.0.0.1\n"));
    assert_non_null(strstr(log, "user \"mallory\" was not found in \"/t/htpasswd\", "
                                "client: 127.0.0.1\n"));
    assert_non_null(strstr(log, "user \"bob\": password mismatch"));
    assert_non_null(strstr(log, "user \"eve\": the password hash in line 3 of \"/t/htpasswd\""));
    zg_log_open("stderr", ZG_LOG_EMERG);

    /* off, from a constant or a variable */
    zg_cv_free(ab.realm);
    ab.realm = realm_cv("off");
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_DECLINED);
    zg_cv_free(ab.realm);
    ab.realm = realm_cv("$arg_realm");
    ctx.args = (zg_str_t)zg_string("realm=off");
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), ZG_DECLINED);
    ctx.args = (zg_str_t)zg_string("realm=r1");
    set_auth(NULL);
    assert_int_equal(zg_auth_basic_check(&ab, &ctx, www), 401);
    assert_string_equal(www, "WWW-Authenticate: Basic realm=\"r1\"\r\n");
    memset(&ctx.args, 0, sizeof(ctx.args));
    zg_cv_free(ab.realm);
    zg_conf_free(conf);
}

static void test_remote_user(void **state)
{
    zg_cv_t *cv = realm_cv("[$remote_user]");
    char out[256];
    size_t n;

    (void)state;
    set_auth("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==");
    n = zg_cv_eval(cv, &ctx, 0, out, sizeof(out));
    assert_int_equal(n, 7);
    assert_memory_equal(out, "[alice]", 7);
    set_auth("Basic Ym9iOg=="); /* "bob:", an empty password */
    n = zg_cv_eval(cv, &ctx, 0, out, sizeof(out));
    assert_memory_equal(out, "[bob]", n);
    set_auth("Basic Ym9i"); /* "bob": no ':' */
    n = zg_cv_eval(cv, &ctx, 0, out, sizeof(out));
    assert_memory_equal(out, "[]", n);
    set_auth(NULL);
    n = zg_cv_eval(cv, &ctx, 1, out, sizeof(out));
    assert_memory_equal(out, "[-]", n); /* as the access log writes an empty value */
    zg_cv_free(cv);
}

static zg_location_t *loc(zg_conf_t *conf, int srv, const char *path)
{
    zg_server_conf_t *s = &zg_http_core_main_conf(conf)->servers[srv];
    for (int i = 0; i < s->nlocations; i++) {
        if (strcmp(s->locations[i].path, path) == 0) {
            return &s->locations[i];
        }
    }
    fail_msg("no location %s", path);
    return NULL;
}

static void test_directives(void **state)
{
    char conf_path[256], text[2048], err[512];
    zg_conf_t *conf;
    zg_location_t *l;

    (void)state;
    write_tmp("users", "alice:{PLAIN}a\n");
    write_tmp("others", "bob:{PLAIN}b\n");
    snprintf(conf_path, sizeof(conf_path), "%s/z.conf", tmpdir);
    snprintf(text, sizeof(text),
             "http {\n"
             "  auth_basic \"top\";\n"
             "  server {\n"
             "    listen 127.0.0.1:8080;\n"
             "    auth_basic_user_file users;\n" /* relative to the config's directory */
             "    location /a { }\n"
             "    location /b { auth_basic off; }\n"
             "    location /c { auth_basic \"inner\"; auth_basic_user_file %s/others; }\n"
             "    location /d { satisfy any; auth_basic_user_file %s/users; }\n"
             "  }\n"
             "  server { listen 127.0.0.1:8081; location /e { } }\n"
             "}\n",
             tmpdir, tmpdir);
    conf = zg_conf_load_string(conf_path, text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    l = loc(conf, 0, "/a");
    assert_non_null(zg_auth_basic_loc_conf(l->loc_conf)->realm);
    assert_memory_equal(zg_cv_const(zg_auth_basic_loc_conf(l->loc_conf)->realm).data, "top", 3);
    assert_non_null(zg_auth_basic_loc_conf(l->loc_conf)->file);
    assert_non_null(zg_auth_basic_find(zg_auth_basic_loc_conf(l->loc_conf)->file, "alice", 5));
    assert_int_equal(zg_http_core_loc_conf(l->loc_conf)->satisfy, ZG_SATISFY_ALL);
    assert_memory_equal(zg_cv_const(zg_auth_basic_loc_conf(loc(conf, 0, "/b")->loc_conf)->realm).data, "off", 3);
    assert_ptr_equal(zg_auth_basic_loc_conf(loc(conf, 0, "/b")->loc_conf)->file, zg_auth_basic_loc_conf(l->loc_conf)->file);
    l = loc(conf, 0, "/c");
    assert_non_null(zg_auth_basic_find(zg_auth_basic_loc_conf(l->loc_conf)->file, "bob", 3));
    assert_null(zg_auth_basic_find(zg_auth_basic_loc_conf(l->loc_conf)->file, "alice", 5));
    l = loc(conf, 0, "/d");
    assert_int_equal(zg_http_core_loc_conf(l->loc_conf)->satisfy, ZG_SATISFY_ANY);
    /* the same file, by another spelling of its path, is read once */
    assert_ptr_equal(zg_auth_basic_loc_conf(l->loc_conf)->file, zg_auth_basic_loc_conf(loc(conf, 0, "/a")->loc_conf)->file);
    l = loc(conf, 1, "/e");
    assert_non_null(zg_auth_basic_loc_conf(l->loc_conf)->realm);
    assert_null(zg_auth_basic_loc_conf(l->loc_conf)->file); /* a realm alone does nothing */
    zg_conf_free(conf);

    /* a missing file is a load error naming the file, the directive and the line */
    snprintf(text, sizeof(text),
             "http {\n server {\n  location / {\n   auth_basic x;\n"
             "   auth_basic_user_file %s/missing;\n  }\n }\n}\n",
             tmpdir);
    assert_null(zg_conf_load_string(conf_path, text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "/missing\" failed (2: No such file or directory) in "
                                "\"auth_basic_user_file\" directive in "));
    assert_non_null(strstr(err, "z.conf:5"));

    static const struct {
        const char *conf, *err;
    } bad[] = {
        { "http { satisfy some; }", "invalid value \"some\" in \"satisfy\" directive" },
        { "http { satisfy any; satisfy all; }", "\"satisfy\" directive is duplicate" },
        { "http { auth_basic a; auth_basic b; }", "\"auth_basic\" directive is duplicate" },
        { "http { auth_basic; }", "invalid number of arguments in \"auth_basic\"" },
        { "http { auth_basic_user_file /etc/$host; }", "variables are not supported" },
        { "auth_basic x;", "\"auth_basic\" directive is not allowed here" },
        { "http { auth_basic $nonesuch; }", "nonesuch" },
    };
    for (size_t i = 0; i < zg_nelems(bad); i++) {
        assert_null(zg_conf_load_string(conf_path, bad[i].conf, strlen(bad[i].conf), err,
                                        sizeof(err)));
        if (strstr(err, bad[i].err) == NULL) {
            fail_msg("%s: got \"%s\"", bad[i].conf, err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_bcrypt_gensalt),
        cmocka_unit_test(test_file_parse),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_remote_user),
        cmocka_unit_test(test_directives),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
