/* SPDX-License-Identifier: MIT */
/*
 * lab-vfio-check: open a VFIO group node the way a VMM does and report whether the kernel
 * considers the group viable (every member bound to vfio-pci or driverless).
 *
 *   lab-vfio-check /dev/vfio/N [--attach]
 *
 * Prints "viable" or "not-viable" and exits 0 / 1; any other failure prints the reason
 * and exits 2. With --attach a viable group is also put in a fresh container and the
 * type1 IOMMU is selected, which only works when a real IOMMU backs the group.
 * The ioctl order follows Documentation/driver-api/vfio.rst ("VFIO Usage Example").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#include "util/util.h"

static int container_open(int *ret_fd)
{
        _cleanup_close_ int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        int version = ioctl(fd, VFIO_GET_API_VERSION);
        if (version != VFIO_API_VERSION)
                return -EPROTO;
        if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)
                return -EOPNOTSUPP;

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int group_attach(int group_fd)
{
        _cleanup_close_ int container = -1;
        int r = container_open(&container);
        if (r < 0) {
                fprintf(stderr, "lab-vfio-check: /dev/vfio/vfio: %s\n", strerror(-r));
                return r;
        }
        if (ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
                r = -errno;
                fprintf(stderr, "lab-vfio-check: VFIO_GROUP_SET_CONTAINER: %s\n", strerror(-r));
                return r;
        }
        if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
                r = -errno;
                fprintf(stderr, "lab-vfio-check: VFIO_SET_IOMMU type1: %s\n", strerror(-r));
                return r;
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 2 || argc > 3 || (argc == 3 && !streq(argv[2], "--attach"))) {
                fprintf(stderr, "usage: lab-vfio-check /dev/vfio/N [--attach]\n");
                return 2;
        }

        _cleanup_close_ int group = open(argv[1], O_RDWR | O_CLOEXEC);
        if (group < 0) {
                fprintf(stderr, "lab-vfio-check: %s: %s\n", argv[1], strerror(errno));
                return 2;
        }

        struct vfio_group_status status = {.argsz = sizeof(status)};
        if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0) {
                fprintf(stderr, "lab-vfio-check: VFIO_GROUP_GET_STATUS: %s\n", strerror(errno));
                return 2;
        }
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
                printf("not-viable\n");
                return 1;
        }
        if (argc == 3 && group_attach(group) < 0)
                return 2;

        printf(argc == 3 ? "viable attached\n" : "viable\n");
        return 0;
}
