/* SPDX-License-Identifier: MIT */
/* k8s-fixture-remove DIR ADDRESS: a function of a generated tree vanishes, as a hot
 * unplug shows it in sysfs (tests/fixtures), for the device plugin's Go tests. */
#include <stdio.h>
#include <string.h>

#include "tests/fixtures/fixture.h"

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "Usage: k8s-fixture-remove DIR ADDRESS\n");
                return 2;
        }
        struct fixture *fx = NULL;
        int r = fixture_open(argv[1], &fx);
        if (r == 0)
                r = fixture_remove_device(fx, argv[2]);
        fixture_free(fx);
        if (r < 0) {
                fprintf(stderr, "k8s-fixture-remove: %s %s: %s\n", argv[1], argv[2], strerror(-r));
                return 1;
        }
        return 0;
}
