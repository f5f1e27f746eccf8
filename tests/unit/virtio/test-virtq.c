/* SPDX-License-Identifier: MIT */
/*
 * The split virtqueue core against rings built in plain memory: well-formed chains, and
 * each way a hostile driver can break the protocol. A broken ring must end in -EBADMSG
 * with the queue marked broken, never in an access outside the fake RAM (ASan would see
 * it) or a walk that does not end.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake-guest.h"

#define QSIZE    8
#define RING_GPA 0x1000u

static struct fake_guest guest;
static struct fake_ring ring;
static struct iov_virtq vq;
static struct iov_virtq_req *req;

static void setup(void)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest RAM allocation failed");
        memset(&vq, 0, sizeof(vq));
        fake_ring_init(&ring, &guest, &vq, QSIZE, RING_GPA);
        vq.indirect_desc = true;
        int r = virtq_enable(&vq, &guest.mem);
        cr_assert_eq(r, 0, "virtq_enable on a valid ring returned %d", r);
        req = calloc(1, sizeof(*req));
        cr_assert_not_null(req, "request allocation failed");
}

static void teardown(void)
{
        free(req);
        fake_guest_fini(&guest);
}

TestSuite(virtq, .init = setup, .fini = teardown);

static void expect_broken(const char *what)
{
        int r = virtq_pop(&vq, req);
        cr_assert_eq(r, -EBADMSG, "%s: virtq_pop returned %d, expected -EBADMSG", what, r);
        cr_assert(vq.broken, "%s: queue not marked broken", what);
        r = virtq_pop(&vq, req);
        cr_assert_eq(r, -EBADMSG, "%s: second pop on a broken queue returned %d", what, r);
        r = virtq_push(&vq, 0, 0);
        cr_assert_eq(r, -EBADMSG, "%s: push on a broken queue returned %d", what, r);
}

/* Pop one chain into req: it must start at head and split into n_out readable and n_in
 * writable segments. */
static void expect_chain(const char *what, uint16_t head, unsigned n_out, unsigned n_in)
{
        int r = virtq_pop(&vq, req);
        cr_assert_eq(r, 1, "pop of %s returned %d", what, r);
        cr_assert_eq(req->head, head, "head %u, expected %u", req->head, head);
        cr_assert_eq(req->n_out, n_out, "n_out %u, expected %u", req->n_out, n_out);
        cr_assert_eq(req->n_in, n_in, "n_in %u, expected %u", req->n_in, n_in);
}

Test(virtq, empty_ring_pops_nothing)
{
        int r = virtq_pop(&vq, req);
        cr_assert_eq(r, 0, "pop on an empty ring returned %d", r);
        cr_assert(!vq.broken, "empty ring marked broken");
}

Test(virtq, chain_splits_into_readable_and_writable)
{
        uint64_t a = fake_guest_alloc(&guest, 16), b = fake_guest_alloc(&guest, 100),
                 c = fake_guest_alloc(&guest, 1);
        memcpy(fake_guest_ptr(&guest, a), "request header!", 16);
        struct fake_buf bufs[] = {{a, 16, false}, {b, 100, true}, {c, 1, true}};
        uint16_t head = fake_ring_add(&ring, bufs, 3);

        expect_chain("a valid chain", head, 1, 2);
        cr_assert_eq(req->out_len, 16, "out_len %lu", (unsigned long)req->out_len);
        cr_assert_eq(req->in_len, 101, "in_len %lu", (unsigned long)req->in_len);
        cr_assert_eq(req->out[0].iov_base, fake_guest_ptr(&guest, a), "out[0] maps elsewhere");
        cr_assert_eq(memcmp(req->out[0].iov_base, "request header!", 16), 0, "out data differs");
        cr_assert_eq(req->in[1].iov_base, fake_guest_ptr(&guest, c), "in[1] maps elsewhere");

        int r = virtq_push(&vq, req->head, 42);
        cr_assert_eq(r, 0, "push returned %d", r);
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&ring, &id, &len), 1, "no used element after push");
        cr_assert_eq(id, head, "used id %u, expected %u", id, head);
        cr_assert_eq(len, 42, "used len %u, expected 42", len);
        cr_assert_eq(virtq_pop(&vq, req), 0, "ring not empty after one chain");
}

Test(virtq, zero_length_descriptor_is_skipped)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 0, false}, {a, 8, true}};
        fake_ring_add(&ring, bufs, 2);
        int r = virtq_pop(&vq, req);
        cr_assert_eq(r, 1, "pop returned %d", r);
        cr_assert_eq(req->n_out, 0, "zero-length buffer became a segment (n_out %u)", req->n_out);
        cr_assert_eq(req->n_in, 1, "n_in %u, expected 1", req->n_in);
}

Test(virtq, unpop_returns_the_same_chain)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        uint16_t head = fake_ring_add(&ring, bufs, 1);
        cr_assert_eq(virtq_pop(&vq, req), 1, "first pop failed");
        virtq_unpop(&vq);
        cr_assert_eq(virtq_pop(&vq, req), 1, "pop after unpop failed");
        cr_assert_eq(req->head, head, "pop after unpop gave head %u, expected %u", req->head, head);
}

Test(virtq, indices_wrap_at_16_bits)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        /* Start both sides just below the wrap, as after 65533 requests. */
        vq.last_avail = vq.used_idx = 65533;
        ring.avail_idx = ring.last_used = 65533;
        for (int i = 0; i < 6; i++) {
                fake_ring_add(&ring, bufs, 1);
                int r = virtq_pop(&vq, req);
                cr_assert_eq(r, 1, "pop %d across the wrap returned %d", i, r);
                cr_assert_eq(virtq_push(&vq, req->head, 1), 0, "push %d failed", i);
                uint32_t id, len;
                cr_assert_eq(fake_ring_get_used(&ring, &id, &len), 1, "used %d missing", i);
        }
        cr_assert_eq(vq.last_avail, 3, "last_avail %u after the wrap, expected 3", vq.last_avail);
}

Test(virtq, indirect_table_is_walked)
{
        uint64_t table = fake_guest_alloc(&guest, 3 * 16);
        uint64_t a = fake_guest_alloc(&guest, 10), b = fake_guest_alloc(&guest, 20);
        struct fake_buf bufs[] = {{a, 10, false}, {b, 20, true}, {b, 5, true}};
        uint16_t head = fake_ring_add_indirect(&ring, table, bufs, 3);
        /* §2.7.5.3.1: the write flag of the descriptor naming the table is ignored. */
        fake_ring_set_desc(&ring, head, table, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE,
                           0);
        expect_chain("an indirect chain", head, 1, 2);
        cr_assert_eq(req->in_len, 25, "in_len %lu, expected 25", (unsigned long)req->in_len);
}

Test(virtq, direct_then_indirect_is_accepted)
{
        uint64_t table = fake_guest_alloc(&guest, 16), a = fake_guest_alloc(&guest, 8);
        struct vring_desc *t = fake_guest_ptr(&guest, table);
        t[0] = (struct vring_desc){.addr = a, .len = 8, .flags = VRING_DESC_F_WRITE};
        fake_ring_set_desc(&ring, 0, a, 4, VRING_DESC_F_NEXT, 1);
        fake_ring_set_desc(&ring, 1, table, 16, VRING_DESC_F_INDIRECT, 0);
        fake_ring_publish(&ring, 0, 1);
        int r = virtq_pop(&vq, req);
        cr_assert_eq(r, 1, "direct descriptor followed by a table: pop returned %d", r);
        cr_assert_eq(req->n_out + req->n_in, 2, "segments %u, expected 2", req->n_out + req->n_in);
}

Test(virtq, loop_in_chain_breaks_queue)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        fake_ring_set_desc(&ring, 0, a, 8, VRING_DESC_F_NEXT, 1);
        fake_ring_set_desc(&ring, 1, a, 8, VRING_DESC_F_NEXT, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("two-descriptor loop");
}

Test(virtq, self_loop_breaks_queue)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        fake_ring_set_desc(&ring, 3, a, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
        fake_ring_publish(&ring, 3, 1);
        expect_broken("descriptor pointing at itself");
}

Test(virtq, next_out_of_range_breaks_queue)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        fake_ring_set_desc(&ring, 0, a, 8, VRING_DESC_F_NEXT, QSIZE);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("next == queue size");
}

Test(virtq, head_out_of_range_breaks_queue)
{
        fake_ring_publish(&ring, 0xffff, 1);
        expect_broken("head 0xffff");
}

Test(virtq, avail_index_jump_breaks_queue)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        fake_ring_set_desc(&ring, 0, a, 8, 0, 0);
        fake_ring_publish(&ring, 0, QSIZE + 1);
        expect_broken("avail idx advanced by size + 1");
}

Test(virtq, avail_index_full_ring_is_fine)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        for (uint16_t i = 0; i < QSIZE; i++) {
                fake_ring_set_desc(&ring, i, a, 8, VRING_DESC_F_WRITE, 0);
                fake_ring_publish(&ring, i, 1);
        }
        for (int i = 0; i < QSIZE; i++) {
                int r = virtq_pop(&vq, req);
                cr_assert_eq(r, 1, "pop %d of a full ring returned %d", i, r);
        }
        cr_assert_eq(virtq_pop(&vq, req), 0, "ring not empty after %d pops", QSIZE);
}

Test(virtq, length_that_wraps_breaks_queue)
{
        fake_ring_set_desc(&ring, 0, 0xfffffffffffff000ull, 0x2000, 0, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("addr 0xfffffffffffff000 len 0x2000");
}

Test(virtq, buffer_beyond_ram_breaks_queue)
{
        fake_ring_set_desc(&ring, 0, FAKE_RAM_SIZE - 8, 16, VRING_DESC_F_WRITE, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("buffer crossing the end of RAM");
}

Test(virtq, buffer_in_hole_breaks_queue)
{
        fake_ring_set_desc(&ring, 0, FAKE_HOLE_START + 0x100, 64, 0, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("buffer inside the MMIO hole");
}

Test(virtq, buffer_straddling_hole_breaks_queue)
{
        fake_ring_set_desc(&ring, 0, FAKE_HOLE_START - 16, 64, 0, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("buffer running into the MMIO hole");
}

Test(virtq, readable_after_writable_breaks_queue)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}, {a, 8, false}};
        fake_ring_add(&ring, bufs, 2);
        expect_broken("device-readable descriptor after a device-writable one");
}

Test(virtq, indirect_without_feature_breaks_queue)
{
        vq.indirect_desc = false;
        uint64_t table = fake_guest_alloc(&guest, 16), a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_add_indirect(&ring, table, bufs, 1);
        expect_broken("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
}

Test(virtq, nested_indirect_breaks_queue)
{
        uint64_t outer = fake_guest_alloc(&guest, 16), inner = fake_guest_alloc(&guest, 16);
        struct vring_desc *t = fake_guest_ptr(&guest, outer);
        t[0] = (struct vring_desc){.addr = inner, .len = 16, .flags = VRING_DESC_F_INDIRECT};
        fake_ring_set_desc(&ring, 0, outer, 16, VRING_DESC_F_INDIRECT, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("indirect table inside an indirect table");
}

Test(virtq, indirect_with_next_breaks_queue)
{
        uint64_t table = fake_guest_alloc(&guest, 16), a = fake_guest_alloc(&guest, 8);
        struct vring_desc *t = fake_guest_ptr(&guest, table);
        t[0] = (struct vring_desc){.addr = a, .len = 8};
        fake_ring_set_desc(&ring, 0, table, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
        fake_ring_set_desc(&ring, 1, a, 8, 0, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("INDIRECT together with NEXT");
}

Test(virtq, indirect_bad_sizes_break_queue)
{
        static const uint32_t lens[] = {0, 15, 17, (IOV_VIRTQ_MAX_SEGS + 1) * 16, 0xfffffff0};
        uint64_t table = fake_guest_alloc(&guest, 16);
        fake_ring_publish(&ring, 0, 1);
        for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                /* The same pending entry, re-read with each bad length. */
                vq.broken = false;
                fake_ring_set_desc(&ring, 0, table, lens[i], VRING_DESC_F_INDIRECT, 0);
                int r = virtq_pop(&vq, req);
                cr_assert_eq(r, -EBADMSG, "indirect table of %u bytes: pop returned %d", lens[i],
                             r);
        }
}

Test(virtq, indirect_loop_is_bounded)
{
        uint64_t table = fake_guest_alloc(&guest, 4 * 16), a = fake_guest_alloc(&guest, 8);
        struct vring_desc *t = fake_guest_ptr(&guest, table);
        for (int i = 0; i < 4; i++)
                t[i] = (struct vring_desc){.addr = a,
                                           .len = 8,
                                           .flags = VRING_DESC_F_NEXT,
                                           .next = (uint16_t)((i + 1) % 4)};
        fake_ring_set_desc(&ring, 0, table, 4 * 16, VRING_DESC_F_INDIRECT, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("loop inside an indirect table");
}

Test(virtq, indirect_next_out_of_table_breaks_queue)
{
        uint64_t table = fake_guest_alloc(&guest, 2 * 16), a = fake_guest_alloc(&guest, 8);
        struct vring_desc *t = fake_guest_ptr(&guest, table);
        t[0] = (struct vring_desc){.addr = a, .len = 8, .flags = VRING_DESC_F_NEXT, .next = 2};
        fake_ring_set_desc(&ring, 0, table, 2 * 16, VRING_DESC_F_INDIRECT, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("indirect next beyond the table");
}

Test(virtq, indirect_table_in_hole_breaks_queue)
{
        fake_ring_set_desc(&ring, 0, FAKE_HOLE_START, 32, VRING_DESC_F_INDIRECT, 0);
        fake_ring_publish(&ring, 0, 1);
        expect_broken("indirect table in the MMIO hole");
}

Test(virtq, enable_rejects_bad_rings)
{
        struct iov_virtq bad = vq;
        bad.size = 6;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EINVAL, "size 6 accepted");
        bad.size = 0;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EINVAL, "size 0 accepted");
        bad.size = IOV_VIRTQ_MAX_SIZE * 2;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EINVAL, "size %u accepted", bad.size);
        bad = vq;
        bad.desc_gpa += 8;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EINVAL, "misaligned descriptor table");
        bad = vq;
        bad.used_gpa = FAKE_HOLE_START;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EFAULT, "used ring in the hole accepted");
        bad = vq;
        bad.avail_gpa = FAKE_RAM_SIZE - 4;
        cr_assert_eq(virtq_enable(&bad, &guest.mem), -EFAULT, "avail ring beyond RAM accepted");
}

Test(virtq, event_idx_interrupt_suppression)
{
        vq.event_idx = true;
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};

        /* The first completion always interrupts. */
        fake_ring_add(&ring, bufs, 1);
        cr_assert_eq(virtq_pop(&vq, req), 1, "pop 1 failed");
        virtq_push(&vq, req->head, 0);
        cr_assert(virtq_should_notify(&vq), "first completion did not ask for an interrupt");

        /* Driver wants an interrupt only once used idx passes 3. */
        fake_ring_set_used_event(&ring, 3);
        for (int i = 0; i < 3; i++) {
                fake_ring_add(&ring, bufs, 1);
                cr_assert_eq(virtq_pop(&vq, req), 1, "pop failed");
                virtq_push(&vq, req->head, 0);
                bool want = virtq_should_notify(&vq);
                /* used idx is now 2, 3, 4: only crossing used_event (3 -> 4) interrupts */
                cr_assert_eq(want, i == 2, "used idx %u: should_notify %d", vq.used_idx, want);
        }
}

Test(virtq, no_interrupt_flag_without_event_idx)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_add(&ring, bufs, 1);
        cr_assert_eq(virtq_pop(&vq, req), 1, "pop failed");
        virtq_push(&vq, req->head, 0);
        fake_ring_set_avail_flags(&ring, VRING_AVAIL_F_NO_INTERRUPT);
        cr_assert(!virtq_should_notify(&vq), "NO_INTERRUPT ignored");
        fake_ring_set_avail_flags(&ring, 0);
        cr_assert(virtq_should_notify(&vq), "interrupt suppressed without NO_INTERRUPT");
}

Test(virtq, enable_notify_publishes_avail_event)
{
        vq.event_idx = true;
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_add(&ring, bufs, 1);
        fake_ring_add(&ring, bufs, 1);
        cr_assert_eq(virtq_pop(&vq, req), 1, "pop failed");
        bool more = virtq_enable_notify(&vq);
        cr_assert(more, "enable_notify missed the second pending chain");
        cr_assert_eq(fake_ring_avail_event(&ring), 1, "avail_event %u, expected 1",
                     fake_ring_avail_event(&ring));
        cr_assert_eq(virtq_pop(&vq, req), 1, "pop 2 failed");
        more = virtq_enable_notify(&vq);
        cr_assert(!more, "enable_notify reported work on an empty ring");
        cr_assert_eq(fake_ring_avail_event(&ring), 2, "avail_event %u, expected 2",
                     fake_ring_avail_event(&ring));
}

Test(virtq, iov_copy_handles_skip_and_short_buffers)
{
        char a[4] = "abcd", b[3] = "efg", out[8] = {0};
        struct iovec iov[] = {{a, 4}, {b, 3}};
        size_t n = virtio_iov_to_buf(iov, 2, 3, out, sizeof(out));
        cr_assert_eq(n, 4, "copied %zu bytes, expected 4", n);
        cr_assert_eq(memcmp(out, "defg", 4), 0, "copied '%.4s', expected 'defg'", out);
        n = virtio_iov_from_buf(iov, 2, 5, "XYZ", 3);
        cr_assert_eq(n, 2, "copied %zu bytes into a 2-byte tail", n);
        cr_assert_eq(memcmp(b, "eXY", 3), 0, "tail is '%.3s', expected 'eXY'", b);
}
