/* A 16550A UART model for the guest's boot log, free of any KVM calls. */
#include "kvm/uart.h"

#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define REG_DATA 0 /* RBR/THR, or DLL when DLAB is set */
#define REG_IER	 1 /* or DLM when DLAB is set */
#define REG_IIR	 2 /* FCR on write */
#define REG_LCR	 3
#define REG_MCR	 4
#define REG_LSR	 5
#define REG_MSR	 6
#define REG_SCR	 7

#define IER_THRI    0x02
#define IIR_NO_INT  0x01
#define IIR_THRI    0x02
#define IIR_FIFO_ON 0xc0
#define FCR_ENABLE  0x01
#define LCR_DLAB    0x80
#define MCR_LOOP    0x10
#define LSR_THRE    0x20
#define LSR_TEMT    0x40
#define MSR_IDLE    0xb0 /* carrier, data set ready, clear to send */

void uart_init(struct uart *u, uart_irq_fn *irq, void *opaque, int echo_fd)
{
	memset(u, 0, offsetof(struct uart, lock));
	u->irq = irq;
	u->opaque = opaque;
	u->echo_fd = echo_fd;
	u->total = 0;
	u->first_byte_ns = 0;
	pthread_mutex_init(&u->lock, NULL);
}

void uart_set_mark(struct uart *u, const char *text)
{
	u->mark = text && *text ? text : NULL;
	u->mark_pos = 0;
	u->mark_ns = 0;
}

/* Plain restart on a mismatch: enough for marks such as "READY" whose
 * prefix does not repeat inside them. */
static void match_mark(struct uart *u, uint8_t c)
{
	if (!u->mark || u->mark_ns)
		return;
	if (c == (uint8_t)u->mark[u->mark_pos])
		u->mark_pos++;
	else
		u->mark_pos = c == (uint8_t)u->mark[0];
	if (!u->mark[u->mark_pos])
		u->mark_ns = now_ns();
}

void uart_exit(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

/* The only interrupt source is "transmitter empty": output is consumed
 * at once, so the THR is always empty and only IER and IIR reads
 * decide whether it is pending. */
static int irq_pending(const struct uart *u)
{
	return (u->ier & IER_THRI) && u->iir_thre;
}

static void update_irq(struct uart *u)
{
	int level = irq_pending(u);

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	if (u->irq)
		u->irq(u->opaque, level);
}

static void log_byte(struct uart *u, uint8_t c)
{
	pthread_mutex_lock(&u->lock);
	if (!u->total)
		u->first_byte_ns = now_ns();
	u->ring[u->total % UART_LOG_SIZE] = c;
	u->total++;
	match_mark(u, c);
	pthread_mutex_unlock(&u->lock);

	/* A live console is best effort: a closed reader must not stop
	 * the guest. */
	if (u->echo_fd >= 0 && write(u->echo_fd, &c, 1) < 0)
		u->echo_fd = -1;
}

/* In loopback the modem outputs (DTR, RTS, OUT1, OUT2) come back as the
 * inputs (DSR, CTS, RI, DCD); the 8250 driver probes the port this way. */
static uint8_t modem_status(const struct uart *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_IDLE;
	return (m & 0x01 ? 0x20 : 0) | (m & 0x02 ? 0x10 : 0) |
	       (m & 0x04 ? 0x40 : 0) | (m & 0x08 ? 0x80 : 0);
}

static uint8_t read_iir(struct uart *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0;

	if (!irq_pending(u))
		return fifo | IIR_NO_INT;
	/* Reading IIR acknowledges a THRE interrupt. */
	u->iir_thre = 0;
	update_irq(u);
	return fifo | IIR_THRI;
}

uint8_t uart_read(struct uart *u, unsigned off)
{
	int dlab = u->lcr & LCR_DLAB;

	switch (off) {
	case REG_DATA:
		return dlab ? u->dll : 0;
	case REG_IER:
		return dlab ? u->dlm : u->ier;
	case REG_IIR:
		return read_iir(u);
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		return LSR_THRE | LSR_TEMT;
	case REG_MSR:
		return modem_status(u);
	case REG_SCR:
		return u->scr;
	}
	return 0xff;
}

static void write_data(struct uart *u, uint8_t val)
{
	if (!(u->mcr & MCR_LOOP))
		log_byte(u, val);
	u->iir_thre = 1;
	update_irq(u);
}

/* Enabling THRI while the THR is empty raises the interrupt at once;
 * the 8250 driver checks for this and calls the port buggy otherwise. */
static void write_ier(struct uart *u, uint8_t val)
{
	uint8_t old = u->ier;

	u->ier = val & 0x0f;
	if ((u->ier & IER_THRI) && !(old & IER_THRI))
		u->iir_thre = 1;
	if (!(u->ier & IER_THRI))
		u->iir_thre = 0;
	update_irq(u);
}

void uart_write(struct uart *u, unsigned off, uint8_t val)
{
	int dlab = u->lcr & LCR_DLAB;

	switch (off) {
	case REG_DATA:
		if (dlab)
			u->dll = val;
		else
			write_data(u, val);
		break;
	case REG_IER:
		if (dlab)
			u->dlm = val;
		else
			write_ier(u, val);
		break;
	case REG_IIR:
		u->fcr = val & FCR_ENABLE;
		break;
	case REG_LCR:
		u->lcr = val;
		break;
	case REG_MCR:
		u->mcr = val & 0x1f;
		break;
	case REG_SCR:
		u->scr = val;
		break;
	}
}

size_t uart_log(struct uart *u, char *buf, size_t len)
{
	uint64_t n, start;

	pthread_mutex_lock(&u->lock);
	n = MIN(MIN(u->total, (uint64_t)UART_LOG_SIZE), (uint64_t)len);
	start = u->total - n;
	for (uint64_t i = 0; i < n; i++)
		buf[i] = u->ring[(start + i) % UART_LOG_SIZE];
	pthread_mutex_unlock(&u->lock);
	return n;
}
