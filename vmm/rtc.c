/* SPDX-License-Identifier: MIT */
/*
 * CMOS real-time clock (MC146818A, ports 0x70 index / 0x71 data), enough for a guest to
 * read the wall-clock time at boot: time and date registers from the host's UTC clock in
 * BCD, 24-hour mode, status A with the update-in-progress bit clear, status D "valid RAM
 * and time", and the rest of the 128 bytes as plain NVRAM. Without it Linux's rtc_cmos
 * polls an all-ones status register (update in progress forever) and times out slowly.
 * No alarm, periodic or update interrupts (IRQ 8 stays quiet).
 */
#include "util/util.h"
#include "vmm/vm.h"

#define RTC_INDEX_PORT 0x70
#define RTC_NVRAM_SIZE 128

enum {
        RTC_SECONDS = 0x00,
        RTC_MINUTES = 0x02,
        RTC_HOURS = 0x04,
        RTC_WEEKDAY = 0x06,
        RTC_DAY = 0x07,
        RTC_MONTH = 0x08,
        RTC_YEAR = 0x09,
        RTC_STATUS_A = 0x0a,
        RTC_STATUS_B = 0x0b,
        RTC_STATUS_C = 0x0c,
        RTC_STATUS_D = 0x0d,
        RTC_CENTURY = 0x32, /* the usual PC location */
};

#define STATUS_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear */
#define STATUS_B_24H     0x02
#define STATUS_B_BINARY  0x04
#define STATUS_D_VALID   0x80

struct iov_rtc {
        pthread_mutex_t lock;
        uint8_t index;
        uint8_t nvram[RTC_NVRAM_SIZE];
};

static uint8_t rtc_encode(const struct iov_rtc *rtc, int value)
{
        if (rtc->nvram[RTC_STATUS_B] & STATUS_B_BINARY)
                return (uint8_t)value;
        return (uint8_t)((value / 10) << 4 | value % 10);
}

struct rtc_time {
        int year, month, day, weekday, hour, minute, second;
};

/* UTC calendar time from the host clock. Computed here rather than with gmtime_r(),
 * which may open /etc/localtime on first use: the sandbox forbids open(). Days since
 * 1970-01-01 become a date in the proleptic Gregorian calendar by counting whole 400-year
 * eras (146097 days) and then years within the era, with March as the first month so
 * the leap day falls at the end of a year. */
static struct rtc_time rtc_now(void)
{
        int64_t secs = (int64_t)(util_realtime_usec() / 1000000);
        int64_t days = secs / 86400, rem = secs % 86400;
        struct rtc_time t = {
                .hour = (int)(rem / 3600),
                .minute = (int)(rem / 60 % 60),
                .second = (int)(rem % 60),
                .weekday = (int)((days + 4) % 7), /* 1970-01-01 was a Thursday */
        };
        int64_t z = days + 719468; /* days since 0000-03-01 */
        int64_t era = z / 146097;
        int64_t doe = z - era * 146097;                                      /* [0, 146096] */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
        int64_t mp = (5 * doy + 2) / 153;                                    /* March = 0 */
        t.day = (int)(doy - (153 * mp + 2) / 5 + 1);
        t.month = (int)(mp < 10 ? mp + 3 : mp - 9);
        t.year = (int)(yoe + era * 400 + (t.month <= 2));
        return t;
}

static uint8_t rtc_read_register(struct iov_rtc *rtc, uint8_t reg)
{
        struct rtc_time t = rtc_now();
        switch (reg) {
        case RTC_SECONDS:
                return rtc_encode(rtc, t.second);
        case RTC_MINUTES:
                return rtc_encode(rtc, t.minute);
        case RTC_HOURS:
                return rtc_encode(rtc, t.hour);
        case RTC_WEEKDAY:
                return rtc_encode(rtc, t.weekday + 1);
        case RTC_DAY:
                return rtc_encode(rtc, t.day);
        case RTC_MONTH:
                return rtc_encode(rtc, t.month);
        case RTC_YEAR:
                return rtc_encode(rtc, t.year % 100);
        case RTC_CENTURY:
                return rtc_encode(rtc, t.year / 100);
        case RTC_STATUS_C:
                return 0; /* no interrupt flags */
        default:
                return rtc->nvram[reg];
        }
}

static void rtc_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct iov_rtc *rtc = opaque;
        if (len != 1) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        pthread_mutex_lock(&rtc->lock);
        if (offset == 0 && is_write) {
                rtc->index = data[0] & 0x7f; /* bit 7 is the NMI mask on a PC */
        } else if (offset == 0) {
                data[0] = 0xff; /* the index register is write-only */
        } else if (is_write) {
                /* The clock follows the host; status A/B and the NVRAM keep what is
                 * written (the guest may switch to binary mode), C and D are read-only. */
                uint8_t reg = rtc->index;
                if (reg == RTC_STATUS_A)
                        rtc->nvram[reg] = data[0] & 0x7f;
                else if (reg == RTC_STATUS_B || reg > RTC_STATUS_D)
                        rtc->nvram[reg] = data[0];
        } else {
                data[0] = rtc_read_register(rtc, rtc->index);
        }
        pthread_mutex_unlock(&rtc->lock);
}

static void rtc_free(void *data)
{
        struct iov_rtc *rtc = data;
        pthread_mutex_destroy(&rtc->lock);
        free(rtc);
}

static int rtc_init(struct iov_vm *vm)
{
        struct iov_rtc *rtc = calloc(1, sizeof(*rtc));
        if (!rtc)
                return -ENOMEM;
        pthread_mutex_init(&rtc->lock, NULL);
        rtc->nvram[RTC_STATUS_A] = STATUS_A_DIVIDER;
        rtc->nvram[RTC_STATUS_B] = STATUS_B_24H;
        rtc->nvram[RTC_STATUS_D] = STATUS_D_VALID;
        int r = vmm_vm_add_cleanup(vm, rtc_free, rtc);
        if (r < 0) {
                rtc_free(rtc);
                return r;
        }
        return vmm_bus_register(&vm->pio, RTC_INDEX_PORT, 2, rtc_access, rtc, "rtc");
}

IOV_VMM_DEVICE("rtc", IOV_DEVICE_ORDER_LEGACY, rtc_init)
