/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the split-virtqueue parser: the input is guest RAM holding a
 * queue at address 0 (its size and ring features come from the first bytes). Every
 * chain the core accepts is read and written in full, so a segment that is not inside
 * RAM shows up as an ASan report; the walk must end for every input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "vmm/virtio/fuzz/fuzz-guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_request(const struct iov_virtq_req *req)
{
        volatile uint8_t sink = 0;

        for (unsigned i = 0; i < req->n_out; i++)
                for (size_t j = 0; j < req->out[i].iov_len; j += 512)
                        sink ^= ((const uint8_t *)req->out[i].iov_base)[j];
        for (unsigned i = 0; i < req->n_in; i++)
                memset(req->in[i].iov_base, 0xa5, req->in[i].iov_len);
        (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct iov_virtq_req req;
        struct fuzz_guest g;

        if (size < 4 || fuzz_guest_init(&g, data, size) < 0)
                return 0;

        struct iov_virtq vq = {
                .size = (uint16_t)(1u << (data[0] % 9)), /* 1 .. 256 */
                .event_idx = data[1] & 1,
                .indirect_desc = data[1] & 2,
        };
        vq.desc_gpa = 0x100;
        vq.avail_gpa = vq.desc_gpa + 16u * vq.size;
        vq.used_gpa = (vq.avail_gpa + 6 + 2u * vq.size + 3) & ~3u;
        if (data[2] & 1)
                vq.used_gpa = FUZZ_HOLE_START - 64; /* rings near the hole */

        if (virtq_enable(&vq, &g.mem) == 0) {
                for (unsigned round = 0; round < 2 * 256u; round++) {
                        int r = virtq_pop(&vq, &req);
                        if (r <= 0) {
                                if (r < 0 || !virtq_enable_notify(&vq))
                                        break;
                                continue;
                        }
                        touch_request(&req);
                        if (data[3] & 1 && round == 0)
                                virtq_unpop(&vq);
                        else
                                virtq_push(&vq, req.head, (uint32_t)req.in_len);
                        (void)virtq_should_notify(&vq);
                }
        }
        fuzz_guest_fini(&g);
        return 0;
}
