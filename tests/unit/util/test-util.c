/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util/util.h"

static char *make_tmpdir(void)
{
        char tmpl[] = "/tmp/iovd-test-util-XXXXXX";
        char *d = mkdtemp(tmpl);
        cr_assert_not_null(d, "mkdtemp failed: %s", strerror(errno));
        return strdup(d);
}

Test(util, atomic_write_replaces_and_leaves_no_temp)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = util_path_join(dir, "state.json", NULL);
        cr_assert_eq(util_write_file_atomic(path, "one", 3, 0600), 0);
        cr_assert_eq(util_write_file_atomic(path, "second", 6, 0600), 0);

        _cleanup_free_ char *content = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(path, 1024, &content, &size), 0);
        cr_assert_str_eq(content, "second", "content is \"%s\"", content);
        cr_assert_eq(size, 6u);

        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600u, "mode is %o", st.st_mode & 0777);
        _cleanup_free_ char *cmd = util_strdup_printf("test $(ls %s | wc -l) -eq 1", dir);
        cr_assert_eq(system(cmd), 0, "temporary file left behind in %s", dir);
        _cleanup_free_ char *rm = util_strdup_printf("rm -rf %s", dir);
        cr_assert_eq(system(rm), 0);
}

Test(util, replace_write_replaces_and_leaves_no_temp)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = util_path_join(dir, "config.json", NULL);
        cr_assert_eq(util_write_file_replace(path, "first", 5, 0600), 0);
        cr_assert_eq(util_write_file_replace(path, "2nd", 3, 0640), 0);

        _cleanup_free_ char *content = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(path, 1024, &content, &size), 0);
        cr_assert_str_eq(content, "2nd", "content is \"%s\"", content);
        cr_assert_eq(size, 3u, "size is %zu", size);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0640u, "mode is %o", st.st_mode & 0777);
        _cleanup_free_ char *cmd = util_strdup_printf("test $(ls %s | wc -l) -eq 1", dir);
        cr_assert_eq(system(cmd), 0, "temporary file left behind in %s", dir);
        _cleanup_free_ char *missing = util_path_join(dir, "no", "such", NULL);
        cr_assert_eq(util_write_file_replace(missing, "x", 1, 0600), -ENOENT);
        _cleanup_free_ char *rm = util_strdup_printf("rm -rf %s", dir);
        cr_assert_eq(system(rm), 0);
}

Test(util, read_file_enforces_max_size)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = util_path_join(dir, "big", NULL);
        char data[10000];
        memset(data, 'x', sizeof(data));
        cr_assert_eq(util_write_file_atomic(path, data, sizeof(data), 0644), 0);
        char *out = NULL;
        cr_assert_eq(util_read_file(path, 5000, &out, NULL), -EFBIG);
        cr_assert_null(out, "output set on failure");
        cr_assert_eq(util_read_file(path, 20000, &out, NULL), 0);
        cr_assert_eq(strlen(out), sizeof(data));
        free(out);
        _cleanup_free_ char *rm = util_strdup_printf("rm -rf %s", dir);
        cr_assert_eq(system(rm), 0);
}

Test(util, parse_u64_is_strict)
{
        uint64_t v = 7;
        cr_assert_eq(util_parse_u64("42", 10, &v), 0);
        cr_assert_eq(v, 42u);
        cr_assert_eq(util_parse_u64("0x1f", 0, &v), 0);
        cr_assert_eq(v, 0x1fu);
        cr_assert_eq(util_parse_u64("-1", 10, &v), -EINVAL);
        cr_assert_eq(util_parse_u64(" 1", 10, &v), -EINVAL);
        cr_assert_eq(util_parse_u64("1x", 10, &v), -EINVAL);
        cr_assert_eq(util_parse_u64("", 10, &v), -EINVAL);
        cr_assert_eq(util_parse_u64("99999999999999999999999", 10, &v), -ERANGE);
        cr_assert_eq(v, 0x1fu, "output changed on failure: %lu", (unsigned long)v);
}

Test(util, path_join_and_consttime)
{
        _cleanup_free_ char *p = util_path_join("/sys/", "/bus/pci", "devices", NULL);
        cr_assert_str_eq(p, "/sys/bus/pci/devices", "joined %s", p);
        cr_assert(util_consttime_equal("token", 5, "token", 5));
        cr_assert(!util_consttime_equal("token", 5, "tokex", 5));
        cr_assert(!util_consttime_equal("token", 5, "toke", 4));
        cr_assert(!util_consttime_equal("token", 5, "", 0));
}

/* "fd:N" names an inherited descriptor (iovd hands iovd-vmm its files so): a new copy of
 * N, at its offset; a path is opened; anything else after "fd:" is -EBADF. */
Test(util, open_inherited_takes_fd_names_and_paths)
{
        char path[] = "/tmp/iovd-test-inherited-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
        cr_assert_eq(write(fd, "abc", 3), 3);
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        char name[32];
        snprintf(name, sizeof(name), "fd:%d", fd);
        int copy = -1;
        cr_assert_eq(util_open_inherited(name, O_RDONLY, &copy), 0, "%s", name);
        cr_expect_neq(copy, fd, "no copy of fd %d", fd);
        cr_expect(fcntl(copy, F_GETFD) & FD_CLOEXEC, "the copy is inherited by exec");
        _cleanup_free_ char *text = NULL;
        cr_assert_eq(util_read_fd(copy, 16, &text, NULL), 0);
        cr_expect_str_eq(text, "abc", "read through the copy: %s", text);
        close(copy);
        int opened = -1;
        cr_assert_eq(util_open_inherited(path, O_RDONLY, &opened), 0, "%s", path);
        close(opened);
        const char *bad[] = {"fd:", "fd:x", "fd:2", "fd:-1", "fd:99999"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int r = util_open_inherited(bad[i], O_RDONLY, &opened);
                cr_expect_eq(r, -EBADF, "%s: %d", bad[i], r);
        }
        close(fd);
        unlink(path);
}
