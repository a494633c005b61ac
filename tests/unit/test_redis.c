/* Unit tests for src/base/redis.c: Redis URLs, the handshake, and blocking
 * connections to a real redis-server of the test's own (a unix socket in a
 * temp dir, no TCP port, no persistence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/redis.h"

static void parse_ok(const char *url, const char *shown, const char *host, int port,
                     const char *path, const char *user, const char *password, int db, int tls)
{
    struct redis_target t;
    struct err err = ERR_INIT;

    if (redis_target_parse(url, &t, &err) != 0)
        fail_msg("'%s' did not parse: %s", url, err.msg);
    assert_string_equal(t.shown, shown);
    if (host)
        assert_string_equal(t.host, host);
    else
        assert_null(t.host);
    if (!path)
        assert_int_equal(t.port, port);
    if (path)
        assert_string_equal(t.path, path);
    else
        assert_null(t.path);
    if (user)
        assert_string_equal(t.user, user);
    else
        assert_null(t.user);
    if (password)
        assert_string_equal(t.password, password);
    else
        assert_null(t.password);
    assert_int_equal(t.db, db);
    assert_int_equal(t.tls, tls);
    redis_target_free(&t);
    assert_null(t.shown);
    redis_target_free(&t); /* twice is harmless */
}

static void test_parse_good(void **state)
{
    (void)state;
    parse_ok("redis://localhost", "redis://localhost:6379", "localhost", 6379, NULL, NULL, NULL,
             0, 0);
    parse_ok("redis://127.0.0.1:7000/3", "redis://127.0.0.1:7000/3", "127.0.0.1", 7000, NULL,
             NULL, NULL, 3, 0);
    parse_ok("redis://h:1/", "redis://h:1", "h", 1, NULL, NULL, NULL, 0, 0);
    parse_ok("redis://:s3cret@h:65535/0", "redis://:***@h:65535", "h", 65535, NULL, NULL,
             "s3cret", 0, 0);
    parse_ok("redis://orch:p%40ss%2Fw%3Ard@redis.example:6380/12",
             "redis://orch:***@redis.example:6380/12", "redis.example", 6380, NULL, "orch",
             "p@ss/w:rd", 12, 0);
    /* An unencoded '@' or '/' in the password: the userinfo ends at the last '@'. */
    parse_ok("redis://:a@b/c@h/2", "redis://:***@h:6379/2", "h", 6379, NULL, NULL, "a@b/c", 2,
             0);
    parse_ok("redis://[::1]:7001/1", "redis://[::1]:7001/1", "::1", 7001, NULL, NULL, NULL, 1, 0);
    parse_ok("rediss://:pw@h", "rediss://:***@h:6379", "h", 6379, NULL, NULL, "pw", 0, 1);
    parse_ok("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock", NULL, 0,
             "/run/redis/redis.sock", NULL, NULL, 0, 0);
    parse_ok("unix://:pw@/tmp/r.sock?db=4", "unix://:***@/tmp/r.sock?db=4", NULL, 0,
             "/tmp/r.sock", NULL, "pw", 4, 0);
    parse_ok("redis://h/2147483647", "redis://h:6379/2147483647", "h", 6379, NULL, NULL, NULL,
             2147483647, 0);
}

static void parse_bad(const char *url, const char *want)
{
    struct redis_target t;
    struct err err = ERR_INIT;

    assert_int_equal(redis_target_parse(url, &t, &err), ERR_INVALID);
    assert_int_equal(err.code, ERR_INVALID);
    if (!strstr(err.msg, want))
        fail_msg("'%s': got '%s', wanted '%s'", url, err.msg, want);
    /* Never the password (every bad URL here that has one uses "hunter2"). */
    assert_null(strstr(err.msg, "hunter2"));
    assert_null(t.shown);
    assert_null(t.password);
    redis_target_free(&t);
}

static void test_parse_bad(void **state)
{
    char big[REDIS_URL_MAX + 20];
    (void)state;

    parse_bad("", "empty");
    parse_bad("hunter2", "starts with redis://");
    parse_bad("http://h", "starts with redis://");
    parse_bad("redis://", "no host");
    parse_bad("redis://:6379", "no host");
    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:65536", "port");
    parse_bad("redis://h:12x", "port");
    parse_bad("redis://h:", "port");
    parse_bad("redis://h/x", "database");
    parse_bad("redis://h/-1", "database");
    parse_bad("redis://h/2147483648", "database");
    parse_bad("redis://h?db=1", "no '?'");
    parse_bad("redis://hunter2@h", "after a colon");
    parse_bad("redis://user:@h", "password after ':' is empty");
    parse_bad("redis://:hunter2%4@h", "%-escape");
    parse_bad("redis://:hunter2%00@h", "%-escape");
    parse_bad("redis://:hunter2%0a@h", "control");
    parse_bad("redis://u%zz:hunter2@h", "user");
    parse_bad("redis://:hunter2@h o", "blank");
    parse_bad("redis://:hunter2@ho$t", "bad character");
    parse_bad("redis://:hunter2@[::1", "[address]");
    parse_bad("redis://:hunter2@[]:1", "[address]");
    parse_bad("redis://[abc]:1", "[address]");
    parse_bad("redis://:hunter2@[::1]x", "after the IPv6");
    parse_bad("redis://:hunter2@[::g$]:1", "IPv6 address has a bad");
    parse_bad("unix://relative.sock", "absolute");
    parse_bad("unix:///tmp/r.sock?database=1", "only '?db=N'");
    parse_bad("unix:///tmp/r.sock?db=x", "database");
    parse_bad("unix:///tmp/r.sock#x", "'#'");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "unix:///", 8);
    parse_bad(big, "longer than");
    {
        char path[300] = "unix:///";
        memset(path + 8, 'p', 200);
        path[208] = '\0';
        parse_bad(path, "socket path is longer");
    }
}

static void test_handshake(void **state)
{
    struct redis_target t;
    struct redis_cmd cmds[2];
    struct err err = ERR_INIT;
    redisReply ok = {.type = REDIS_REPLY_STATUS, .str = (char *)"OK", .len = 2};
    redisReply wrong = {.type = REDIS_REPLY_ERROR,
                        .str = (char *)"WRONGPASS invalid username-password pair",
                        .len = 40};
    redisReply nopass = {.type = REDIS_REPLY_ERROR,
                         .str = (char *)"ERR AUTH <password> called without any password "
                                        "configured for the default user",
                         .len = 60};
    redisReply baddb = {.type = REDIS_REPLY_ERROR, .str = (char *)"ERR DB index is out of range",
                        .len = 28};
    (void)state;

    assert_int_equal(redis_target_parse("redis://h", &t, NULL), 0);
    assert_int_equal(redis_handshake(&t, cmds), 0);
    redis_target_free(&t);

    assert_int_equal(redis_target_parse("redis://admin:hunter2@h/7", &t, NULL), 0);
    assert_int_equal(redis_handshake(&t, cmds), 2);
    assert_int_equal(cmds[0].argc, 3);
    assert_string_equal(cmds[0].argv[0], "AUTH");
    assert_string_equal(cmds[0].argv[1], "admin");
    assert_string_equal(cmds[0].argv[2], "hunter2");
    assert_int_equal(cmds[0].argvlen[2], 7);
    assert_int_equal(cmds[1].argc, 2);
    assert_string_equal(cmds[1].argv[0], "SELECT");
    assert_string_equal(cmds[1].argv[1], "7");
    assert_int_equal(redis_handshake_check(&t, &cmds[0], &ok, &err), 0);
    assert_int_equal(redis_handshake_check(&t, &cmds[0], &wrong, &err), ERR_INVALID);
    assert_string_equal(err.msg, "redis://admin:***@h:6379/7 refused the password (or the user)");
    assert_int_equal(redis_handshake_check(&t, &cmds[0], &nopass, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "has none set"));
    assert_int_equal(redis_handshake_check(&t, &cmds[1], &baddb, &err), ERR_INVALID);
    assert_string_equal(err.msg, "redis://admin:***@h:6379/7: cannot select database 7: ERR DB "
                                 "index is out of range");
    assert_int_equal(redis_handshake_check(&t, &cmds[1], NULL, &err), ERR_IO);
    assert_null(strstr(err.msg, "hunter2"));
    redis_target_free(&t);

    assert_int_equal(redis_target_parse("unix://:pw@/x.sock", &t, NULL), 0);
    assert_int_equal(redis_handshake(&t, cmds), 1);
    assert_int_equal(cmds[0].argc, 2);
    assert_string_equal(cmds[0].argv[1], "pw");
    redis_target_free(&t);
}

static void test_log_key(void **state)
{
    char key[REDIS_LOG_KEY_MAX];
    (void)state;
    redis_log_key(key, "ex_0123456789abcdef", 3, 2);
    assert_string_equal(key, "orch:log:ex_0123456789abcdef:3:2");
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connect_refused_and_tls(void **state)
{
    struct redis_target t;
    struct err err = ERR_INIT;
    char url[128];
    (void)state;

    snprintf(url, sizeof(url), "redis://:hunter2@127.0.0.1:%d", closed_port());
    assert_int_equal(redis_target_parse(url, &t, NULL), 0);
    assert_null(redis_connect_sync(&t, 2000, &err));
    assert_int_equal(err.code, ERR_IO);
    if (strncmp(err.msg, "cannot reach redis://:***@127.0.0.1:", 36))
        fail_msg("%s", err.msg);
    assert_null(strstr(err.msg, "hunter2"));
    redis_target_free(&t);

    assert_int_equal(redis_target_parse("unix:///nonexistent/dir/r.sock", &t, NULL), 0);
    assert_null(redis_connect_sync(&t, 2000, &err));
    assert_int_equal(err.code, ERR_IO);
    assert_non_null(strstr(err.msg, "cannot reach unix:///nonexistent/dir/r.sock: "));
    redis_target_free(&t);

    assert_int_equal(redis_target_parse("rediss://:hunter2@127.0.0.1:1", &t, NULL), 0);
    assert_null(redis_connect_sync(&t, 2000, &err));
    assert_int_equal(err.code, ERR_IO); /* through the TLS tunnel, which says why */
    if (strcmp(err.msg, "cannot reach rediss://:***@127.0.0.1:1: Connection refused"))
        fail_msg("%s", err.msg);
    assert_null(strstr(err.msg, "hunter2"));
    redis_target_free(&t);
}

/* The TLS tunnel's own parts (the TLS itself: tests/e2e/test_redis_tls.py). */
static void test_tunnel(void **state)
{
    struct redis_target t, u;
    struct err err = ERR_INIT;
    const char *p1, *p2;
    struct stat st;
    char dir[128];

    (void)state;
    assert_int_equal(redis_target_parse("rediss://:hunter2@127.0.0.1:2", &t, NULL), 0);
    assert_int_equal(redis_target_parse("rediss://127.0.0.1:2/4", &u, NULL), 0);
    /* One tunnel per host and port, in a directory only this user can enter. */
    p1 = redis_tunnel_path(&t, &err);
    assert_non_null(p1);
    p2 = redis_tunnel_path(&u, &err);
    assert_ptr_equal(p1, p2);
    snprintf(dir, sizeof(dir), "%s", p1);
    *strrchr(dir, '/') = 0;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(p1, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    redis_target_free(&u);

    /* Not TLS: no tunnel. */
    assert_int_equal(redis_target_parse("redis://127.0.0.1:2", &u, NULL), 0);
    assert_null(redis_tunnel_path(&u, &err));
    assert_int_equal(err.code, ERR_INVALID);
    redis_target_free(&u);

    /* Bad settings, named (a new host: settings are read when its tunnel is made). */
    assert_int_equal(redis_target_parse("rediss://:hunter2@127.0.0.1:3", &u, NULL), 0);
    setenv("ORCH_REDIS_TLS_CA_CERT", "/nonexistent/ca.pem", 1);
    assert_null(redis_connect_sync(&u, 2000, &err));
    assert_int_equal(err.code, ERR_INVALID);
    {
        const char *want = "rediss://:***@127.0.0.1:3: cannot load the CA certificates of "
                           "ORCH_REDIS_TLS_CA_CERT /nonexistent/ca.pem: ";

        if (strncmp(err.msg, want, strlen(want)))
            fail_msg("%s", err.msg);
    }
    unsetenv("ORCH_REDIS_TLS_CA_CERT");
    setenv("ORCH_REDIS_TLS_CERT", "/nonexistent/c.pem", 1);
    assert_null(redis_tunnel_path(&u, &err));
    assert_string_equal(err.msg, "rediss://:***@127.0.0.1:3: ORCH_REDIS_TLS_CERT and "
                                 "ORCH_REDIS_TLS_KEY go together");
    unsetenv("ORCH_REDIS_TLS_CERT");
    setenv("ORCH_REDIS_TLS_INSECURE", "maybe", 1);
    assert_null(redis_tunnel_path(&u, &err));
    assert_string_equal(err.msg, "ORCH_REDIS_TLS_INSECURE: expected 1 or 0, not \"maybe\"");
    unsetenv("ORCH_REDIS_TLS_INSECURE");
    redis_target_free(&u);

    /* The tunnel's own errors are told apart from the server's. */
    assert_string_equal(redis_tunnel_error(REDIS_TUNNEL_ERR "x: why"), "x: why");
    assert_null(redis_tunnel_error("ERR unknown command"));
    assert_null(redis_tunnel_error(NULL));
    redis_target_free(&t);
}

/* ------------------------------------------------------- a real redis-server */

struct server {
    char dir[64];
    char sock[128];
    pid_t pid;
};

/* Wait until `pid` is stopped (state T in /proc/PID/stat). */
static void wait_stopped(pid_t pid)
{
    char path[64], buf[512];

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 10000; i++) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        const char *close_paren;

        if (f)
            fclose(f);
        buf[n] = 0;
        close_paren = strrchr(buf, ')');
        if (close_paren && close_paren[1] == ' ' && (close_paren[2] == 'T' || close_paren[2] == 't'))
            return;
        usleep(1000);
    }
    fail_msg("redis-server %d did not stop", (int)pid);
}

static int server_start(struct server *s, const char *password)
{
    char url[256];
    struct redis_target t;

    snprintf(s->dir, sizeof(s->dir), "/tmp/orch-unit-redis-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    snprintf(s->sock, sizeof(s->sock), "%s/r.sock", s->dir);
    s->pid = fork();
    if (s->pid == 0) {
        const char *argv[16];
        int n = 0;
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = "0";
        argv[n++] = "--unixsocket";
        argv[n++] = s->sock;
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n++] = "--logfile";
        argv[n++] = "";
        if (password) {
            argv[n++] = "--requirepass";
            argv[n++] = password;
        }
        argv[n] = NULL;
        /* Dies with the test, even stopped: a failed assertion while it is
         * paused must not leave it holding ctest's output open. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    if (s->pid < 0)
        return -1;
    /* Wait for the socket to answer (no fixed sleep: the condition). */
    snprintf(url, sizeof(url), "unix://%s%s@%s", password ? ":" : "", password ? password : "",
             s->sock);
    if (!password)
        snprintf(url, sizeof(url), "unix://%s", s->sock);
    assert_int_equal(redis_target_parse(url, &t, NULL), 0);
    for (int i = 0; i < 30000; i++) {
        struct err err = ERR_INIT;
        int status;
        redisContext *c = redis_connect_sync(&t, 1000, &err);
        if (c) {
            redisFree(c);
            redis_target_free(&t);
            return 0;
        }
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            redis_target_free(&t);
            fail_msg("redis-server exited (is it installed? scripts/install-deps.sh test)");
        }
        usleep(1000);
    }
    redis_target_free(&t);
    return -1;
}

static void server_stop(struct server *s)
{
    char path[200];
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    unlink(s->sock);
    snprintf(path, sizeof(path), "%s/dump.rdb", s->dir);
    unlink(path);
    rmdir(s->dir);
}

static redisContext *connect_url(const char *fmt, const struct server *s, struct err *err)
{
    char url[256];
    struct redis_target t;
    redisContext *c;

    snprintf(url, sizeof(url), fmt, s->sock);
    assert_int_equal(redis_target_parse(url, &t, NULL), 0);
    c = redis_connect_sync(&t, 5000, err);
    redis_target_free(&t);
    return c;
}

static void test_connect_real_server(void **state)
{
    struct server s;
    struct err err = ERR_INIT;
    redisContext *c;
    redisReply *r;
    (void)state;

    assert_int_equal(server_start(&s, "hunter2"), 0);

    c = connect_url("unix://:hunter2@%s?db=3", &s, &err);
    assert_non_null(c);
    r = redisCommand(c, "SET k v");
    freeReplyObject(r);
    r = redisCommand(c, "CLIENT INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, " db=3 "));
    freeReplyObject(r);
    redisFree(c);

    assert_null(connect_url("unix://:wrong@%s", &s, &err));
    assert_int_equal(err.code, ERR_INVALID);
    if (!strstr(err.msg, "unix://:***@") || !strstr(err.msg, "refused the password"))
        fail_msg("%s", err.msg);
    assert_null(strstr(err.msg, "wrong"));

    assert_null(connect_url("unix://%s", &s, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs a password"));

    assert_null(connect_url("unix://:hunter2@%s?db=99999", &s, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "cannot select database 99999"));

    /* Paused: connects (the kernel accepts), then no answer in time. kill()
     * returns before the server has stopped: wait until it has. */
    kill(s.pid, SIGSTOP);
    wait_stopped(s.pid);
    {
        char url[256];
        struct redis_target t;
        snprintf(url, sizeof(url), "unix://:hunter2@%s", s.sock);
        assert_int_equal(redis_target_parse(url, &t, NULL), 0);
        assert_null(redis_connect_sync(&t, 200, &err));
        assert_int_equal(err.code, ERR_TIMEOUT);
        assert_non_null(strstr(err.msg, "did not answer within 200 ms"));
        redis_target_free(&t);
    }
    kill(s.pid, SIGCONT);
    server_stop(&s);

    /* No password set on the server, one in the URL. */
    assert_int_equal(server_start(&s, NULL), 0);
    assert_null(connect_url("unix://:hunter2@%s", &s, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "has none set"));
    c = connect_url("unix://%s", &s, &err);
    assert_non_null(c);
    redisFree(c);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_log_key),
        cmocka_unit_test(test_connect_refused_and_tls),
        cmocka_unit_test(test_tunnel),
        cmocka_unit_test(test_connect_real_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
