/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci common configuration registers (virtio 1.2 §4.1.4.3) as a driver sees
 * them, on a transport without a VM (no KVM calls succeed; doorbells stay on the MMIO
 * path): feature negotiation, queue set-up, bad values, reset, odd access widths.
 */
#include <criterion/criterion.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stddef.h>
#include <string.h>

#include "fake-guest.h"
#include "vmm/virtio/pci.h"

#define OFF(field) offsetof(struct virtio_pci_common_cfg, field)

static struct fake_guest guest;
static struct iov_vm vm;
static struct iov_virtio_pci p;

static void setup(void)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        memset(&p, 0, sizeof(p));
        vm.vm_fd = -1;
        vm.stop_fd = -1; /* a stop request must not write to fd 0 */
        p.vm = &vm;
        int r = virtio_rng_new(&guest.mem, &p.vdev);
        cr_assert_eq(r, 0, "virtio_rng_new returned %d", r);
        p.n_vectors = 2;
        p.config_vector = p.queue_vector[0] = VIRTIO_MSI_NO_VECTOR;
        pthread_mutex_init(&p.lock, NULL);
}

static void teardown(void)
{
        virtio_dev_free(p.vdev);
        fake_guest_fini(&guest);
}

TestSuite(virtio_pci_common, .init = setup, .fini = teardown);

static uint32_t rd(size_t offset, uint32_t len)
{
        uint32_t v = 0;
        vpci_common_access(&p, offset, (uint8_t *)&v, len, false);
        return v;
}

static void wr(size_t offset, uint32_t len, uint32_t v)
{
        vpci_common_access(&p, offset, (uint8_t *)&v, len, true);
}

static void negotiate(uint32_t high_features)
{
        wr(OFF(device_status), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        wr(OFF(guest_feature_select), 4, 1);
        wr(OFF(guest_feature), 4, high_features);
        wr(OFF(device_status), 1, 0x0b);
}

Test(virtio_pci_common, device_features_by_select)
{
        wr(OFF(device_feature_select), 4, 1);
        uint32_t hi = rd(OFF(device_feature), 4);
        cr_assert(hi & 1, "VERSION_1 (bit 32) not offered: high word 0x%08x", hi);
        wr(OFF(device_feature_select), 4, 0);
        uint32_t lo = rd(OFF(device_feature), 4);
        cr_assert(lo & (1u << VIRTIO_RING_F_EVENT_IDX), "EVENT_IDX not offered: 0x%08x", lo);
        wr(OFF(device_feature_select), 4, 7);
        cr_assert_eq(rd(OFF(device_feature), 4), 0, "select 7 reads non-zero");
        cr_assert_eq(rd(OFF(num_queues), 2), 1, "num_queues %u", rd(OFF(num_queues), 2));
}

Test(virtio_pci_common, features_ok_with_version_1)
{
        negotiate(1);
        uint32_t s = rd(OFF(device_status), 1);
        cr_assert_eq(s, 0x0b, "status 0x%02x after FEATURES_OK with VERSION_1", s);
        /* Features are frozen now. */
        wr(OFF(guest_feature_select), 4, 0);
        wr(OFF(guest_feature), 4, 1u << VIRTIO_RING_F_EVENT_IDX);
        cr_assert_eq(rd(OFF(guest_feature), 4), 0, "feature write after FEATURES_OK took");
}

Test(virtio_pci_common, features_ok_refused_without_version_1)
{
        negotiate(0);
        uint32_t s = rd(OFF(device_status), 1);
        cr_assert_eq(s & VIRTIO_CONFIG_S_FEATURES_OK, 0, "status 0x%02x kept FEATURES_OK", s);
}

Test(virtio_pci_common, queue_setup_and_enable)
{
        negotiate(1);
        cr_assert_eq(rd(OFF(queue_size), 2), 64, "max queue size %u", rd(OFF(queue_size), 2));
        wr(OFF(queue_size), 2, 8);
        /* The descriptor address one byte at a time, the others as halves. */
        for (int i = 0; i < 4; i++)
                wr(OFF(queue_desc_lo) + i, 1, (0x1000 >> (8 * i)) & 0xff);
        wr(OFF(queue_avail_lo), 4, 0x1080);
        wr(OFF(queue_avail_hi), 4, 0);
        wr(OFF(queue_used_lo), 4, 0x2000);
        wr(OFF(queue_msix_vector), 2, 1);
        wr(OFF(queue_enable), 2, 1);
        cr_assert_eq(rd(OFF(queue_enable), 2), 1, "queue not enabled");
        struct iov_virtq *vq = &p.vdev->queues[0];
        cr_assert_eq(vq->desc_gpa, 0x1000, "desc 0x%lx", (unsigned long)vq->desc_gpa);
        cr_assert_eq(vq->avail_gpa, 0x1080, "avail 0x%lx", (unsigned long)vq->avail_gpa);
        cr_assert_eq(rd(OFF(queue_msix_vector), 2), 1, "vector %u", rd(OFF(queue_msix_vector), 2));
        /* Rings are fixed while the queue runs. */
        wr(OFF(queue_desc_lo), 4, 0x5000);
        cr_assert_eq(vq->desc_gpa, 0x1000, "desc moved to 0x%lx while enabled",
                     (unsigned long)vq->desc_gpa);
}

/* The driver's queue set-up (§4.1.5.1.3) for the selected queue: size, rings in RAM,
 * enable, each register written whole. */
static void enable_queue(uint16_t size)
{
        wr(OFF(queue_size), 2, size);
        wr(OFF(queue_desc_lo), 4, 0x1000);
        wr(OFF(queue_avail_lo), 4, 0x1080);
        wr(OFF(queue_used_lo), 4, 0x2000);
        wr(OFF(queue_enable), 2, 1);
}

Test(virtio_pci_common, bad_queue_size_needs_reset)
{
        negotiate(1);
        enable_queue(6);
        uint32_t s = rd(OFF(device_status), 1);
        cr_assert(s & VIRTIO_CONFIG_S_NEEDS_RESET, "queue size 6: status 0x%02x", s);
        cr_assert_eq(rd(OFF(queue_enable), 2), 0, "queue of size 6 enabled");
}

Test(virtio_pci_common, ring_in_hole_needs_reset)
{
        negotiate(1);
        wr(OFF(queue_size), 2, 8);
        wr(OFF(queue_desc_lo), 4, FAKE_HOLE_START);
        wr(OFF(queue_enable), 2, 1);
        uint32_t s = rd(OFF(device_status), 1);
        cr_assert(s & VIRTIO_CONFIG_S_NEEDS_RESET, "ring in the hole: status 0x%02x", s);
}

Test(virtio_pci_common, vectors_and_queue_select_out_of_range)
{
        wr(OFF(msix_config), 2, 7);
        cr_assert_eq(rd(OFF(msix_config), 2), VIRTIO_MSI_NO_VECTOR, "vector 7 of 2 accepted");
        wr(OFF(queue_select), 2, 5);
        cr_assert_eq(rd(OFF(queue_size), 2), 0, "queue 5 reads size %u", rd(OFF(queue_size), 2));
        wr(OFF(queue_enable), 2, 1); /* must not touch anything */
        cr_assert_eq(rd(0x38, 4), 0, "read past the structure is non-zero");
}

Test(virtio_pci_common, reset_returns_to_initial_state)
{
        negotiate(1);
        enable_queue(8);
        wr(OFF(device_status), 1, 0);
        cr_assert_eq(rd(OFF(device_status), 1), 0, "status after reset 0x%02x",
                     rd(OFF(device_status), 1));
        cr_assert_eq(rd(OFF(queue_enable), 2), 0, "queue still enabled after reset");
        cr_assert_eq(rd(OFF(queue_size), 2), 64, "queue size %u after reset",
                     rd(OFF(queue_size), 2));
        wr(OFF(guest_feature_select), 4, 1);
        cr_assert_eq(rd(OFF(guest_feature), 4), 0, "driver features survived reset");
}
