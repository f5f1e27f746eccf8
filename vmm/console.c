/* SPDX-License-Identifier: MIT */
/* Guest console input: a thread copies stdin into the UART (serial stdio). It ends when
 * the VM stops (it polls the stop eventfd with stdin), so it can be joined before the VM
 * is freed. */
#include <poll.h>
#include <pthread.h>

#include "util/util.h"
#include "vmm/run.h"

static void *console_input_thread(void *arg)
{
        struct iov_vm *vm = arg;
        uint8_t buf[256];
        for (;;) {
                struct pollfd pfds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                         {.fd = vm->stop_fd, .events = POLLIN}};
                if (poll(pfds, ARRAY_SIZE(pfds), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (pfds[1].revents)
                        return NULL;
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

int vmm_console_start_input(struct iov_vm *vm, pthread_t *ret_thread)
{
        pthread_t thread;
        int r = pthread_create(&thread, NULL, console_input_thread, vm);
        if (r > 0)
                return -r;
        *ret_thread = thread;
        return 0;
}
