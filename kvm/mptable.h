/* The MultiProcessor table that tells the guest about its local APIC and
 * the in-kernel IOAPIC, so it routes interrupts through the IOAPIC. */
#ifndef VMPOOL_KVM_MPTABLE_H
#define VMPOOL_KVM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

/* Where KVM's in-kernel IOAPIC and local APIC answer. */
#define MPTABLE_IOAPIC_ADDR 0xfec00000u
#define MPTABLE_LAPIC_ADDR  0xfee00000u
#define MPTABLE_IOAPIC_ID   1
/* ISA interrupt lines 0..15 go to the IOAPIC pin of the same number, as
 * KVM's default routing wires them. */
#define MPTABLE_ISA_IRQS 16

/* Room the floating pointer and the table need together. */
#define MPTABLE_MAX_SIZE 512

/* Write the floating pointer at gpa (which buf maps, size bytes) and the
 * configuration table right after it: one CPU (local APIC id 0), one ISA
 * bus, the IOAPIC, ISA lines 0..15 but 2 (the PIC cascade) to their pins,
 * LINT0 as ExtINT and LINT1 as NMI. Returns the bytes written, or -ENOSPC
 * when size is too small. */
int mptable_write(void *buf, size_t size, uint32_t gpa);

#endif
