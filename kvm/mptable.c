/* The MultiProcessor table (spec 1.4) for a one-CPU guest with an IOAPIC:
 * a floating pointer the kernel finds in the last KiB of base memory, and
 * the configuration table it points to. */
#include "kvm/mptable.h"

#include <errno.h>
#include <string.h>

#define MP_SPEC_REV	 4 /* 1.4 */
#define MP_CPU_ENABLED	 0x01
#define MP_CPU_BOOT	 0x02
#define MP_IOAPIC_EN	 0x01
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VER	 0x11
#define MP_ISA_BUS	 0
#define MP_ALL_LAPICS	 0xff
#define MP_PIC_CASCADE	 2

enum mp_entry_type {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};

enum mp_irq_type {
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3,
};

struct mp_floating {
	char signature[4]; /* "_MP_" */
	uint32_t table;	   /* physical address of the configuration table */
	uint8_t length;	   /* in 16-byte units */
	uint8_t spec;
	uint8_t checksum;
	uint8_t feature[5]; /* all zero: a configuration table follows */
} __attribute__((packed));

struct mp_config {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* header and every entry */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_table;
	uint16_t oem_size;
	uint16_t entries;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_ver;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type;
	uint8_t id;
	char name[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;
	uint8_t id;
	uint8_t ver;
	uint8_t flags;
	uint32_t addr;
} __attribute__((packed));

/* An interrupt source: on the IOAPIC (MP_INTSRC) or a local APIC pin. */
struct mp_irq {
	uint8_t type;
	uint8_t irq_type;
	uint16_t flags; /* 0: polarity and trigger as the bus says */
	uint8_t bus;
	uint8_t bus_irq;
	uint8_t dst_apic;
	uint8_t dst_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating) == 16, "floating pointer");
_Static_assert(sizeof(struct mp_config) == 44, "configuration header");
_Static_assert(sizeof(struct mp_processor) == 20, "processor entry");
_Static_assert(sizeof(struct mp_bus) == 8, "bus entry");
_Static_assert(sizeof(struct mp_ioapic) == 8, "IOAPIC entry");
_Static_assert(sizeof(struct mp_irq) == 8, "interrupt entry");

/* The byte that makes the bytes of p sum to zero. */
static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)-sum;
}

/* Appends entries after the configuration header. */
struct mp_writer {
	uint8_t *at;
	struct mp_config *cfg;
};

static void put(struct mp_writer *w, const void *entry, size_t len)
{
	memcpy(w->at, entry, len);
	w->at += len;
	w->cfg->length += len;
	w->cfg->entries++;
}

static void put_fixed(struct mp_writer *w)
{
	struct mp_processor cpu = {
	    .type = MP_PROCESSOR,
	    .apic_id = 0,
	    .apic_ver = MP_LAPIC_VERSION,
	    .flags = MP_CPU_ENABLED | MP_CPU_BOOT,
	};
	struct mp_bus isa = {.type = MP_BUS, .id = MP_ISA_BUS};
	struct mp_ioapic io = {
	    .type = MP_IOAPIC,
	    .id = MPTABLE_IOAPIC_ID,
	    .ver = MP_IOAPIC_VER,
	    .flags = MP_IOAPIC_EN,
	    .addr = MPTABLE_IOAPIC_ADDR,
	};

	memcpy(isa.name, "ISA   ", sizeof(isa.name));
	put(w, &cpu, sizeof(cpu));
	put(w, &isa, sizeof(isa));
	put(w, &io, sizeof(io));
}

static void put_irq(struct mp_writer *w, uint8_t type, uint8_t irq_type,
		    uint8_t bus_irq, uint8_t apic, uint8_t pin)
{
	struct mp_irq e = {
	    .type = type,
	    .irq_type = irq_type,
	    .bus = MP_ISA_BUS,
	    .bus_irq = bus_irq,
	    .dst_apic = apic,
	    .dst_pin = pin,
	};

	put(w, &e, sizeof(e));
}

static void put_irqs(struct mp_writer *w)
{
	for (uint8_t irq = 0; irq < MPTABLE_ISA_IRQS; irq++)
		if (irq != MP_PIC_CASCADE)
			put_irq(w, MP_INTSRC, MP_INT, irq, MPTABLE_IOAPIC_ID,
				irq);
	put_irq(w, MP_LINTSRC, MP_EXTINT, 0, MP_ALL_LAPICS, 0);
	put_irq(w, MP_LINTSRC, MP_NMI, 0, MP_ALL_LAPICS, 1);
}

static void write_config(struct mp_config *cfg)
{
	struct mp_writer w = {.at = (uint8_t *)(cfg + 1), .cfg = cfg};

	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->signature, "PCMP", 4);
	memcpy(cfg->oem, "VMPOOL  ", sizeof(cfg->oem));
	memcpy(cfg->product, "MICROVM     ", sizeof(cfg->product));
	cfg->spec = MP_SPEC_REV;
	cfg->length = sizeof(*cfg);
	cfg->lapic = MPTABLE_LAPIC_ADDR;
	put_fixed(&w);
	put_irqs(&w);
	cfg->checksum = checksum(cfg, cfg->length);
}

int mptable_write(void *buf, size_t size, uint32_t gpa)
{
	struct mp_floating *mpf = buf;
	struct mp_config *cfg = (struct mp_config *)(mpf + 1);

	if (size < MPTABLE_MAX_SIZE)
		return -ENOSPC;
	memset(buf, 0, MPTABLE_MAX_SIZE);
	write_config(cfg);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->table = gpa + sizeof(*mpf);
	mpf->length = 1;
	mpf->spec = MP_SPEC_REV;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return (int)(sizeof(*mpf) + cfg->length);
}
