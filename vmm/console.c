/* SPDX-License-Identifier: MIT */
/* Guest console input: a thread copies stdin into the UART (serial stdio). */
#include <pthread.h>

#include "util/util.h"
#include "vmm/run.h"

static void *console_input_thread(void *arg)
{
        struct iov_vm *vm = arg;
        uint8_t buf[256];
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return NULL; /* end of input: the guest just gets no more */
                size_t done = 0;
                while (done < (size_t)n && !vmm_vm_stopping(vm)) {
                        done += vmm_uart_input(vm, buf + done, (size_t)n - done);
                        if (done < (size_t)n)
                                util_sleep_usec(1000); /* the guest has not read yet */
                }
        }
}

int vmm_console_start_input(struct iov_vm *vm)
{
        pthread_t thread;
        int r = pthread_create(&thread, NULL, console_input_thread, vm);
        if (r > 0)
                return -r;
        pthread_detach(thread);
        return 0;
}
