/* A 16550A UART model for the guest's boot log, free of any KVM calls. */
#ifndef VMPOOL_KVM_UART_H
#define VMPOOL_KVM_UART_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ  4
#define UART_NR_PORTS  8
/* How much of the newest output each VM keeps for diagnostics. */
#define UART_LOG_SIZE (64 * 1024)

/* Called with the new level of the interrupt line whenever it changes. */
typedef void uart_irq_fn(void *opaque, int level);

struct uart {
	uint8_t ier, iir_thre, lcr, mcr, scr, fcr, dll, dlm;

	uart_irq_fn *irq;
	void *opaque;
	int irq_level;
	/* Every byte is also copied here when >= 0 (a live console). */
	int echo_fd;

	/* The log ring: `total` bytes were ever written, the newest
	 * UART_LOG_SIZE of them are kept. Readers lock; the vCPU writes. */
	pthread_mutex_t lock;
	uint64_t total;
	uint64_t first_byte_ns;
	uint8_t ring[UART_LOG_SIZE];

	/* When set, mark_ns records when the output first contained it. */
	const char *mark;
	size_t mark_pos;
	uint64_t mark_ns;
};

/* irq may be NULL (no line); echo_fd -1 for none. */
void uart_init(struct uart *u, uart_irq_fn *irq, void *opaque, int echo_fd);
void uart_exit(struct uart *u);

/* Timestamp the first appearance of text in the output (a boot-time
 * probe for guests that have no other way to say they are up). */
void uart_set_mark(struct uart *u, const char *text);

/* One guest access to register `off` (0..7) of the port. */
uint8_t uart_read(struct uart *u, unsigned off);
void uart_write(struct uart *u, unsigned off, uint8_t val);

/* Copy the newest output, oldest byte first, into buf (at most len
 * bytes); return how many were copied. */
size_t uart_log(struct uart *u, char *buf, size_t len);

#endif
