/* Tests of the 16550A model as the 8250 driver probes and uses it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kvm/uart.h"

#define THR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct uart *u;
static int level, changes;

static void record_irq(void *opaque, int new_level)
{
	level = new_level;
	changes++;
}

static void setup(void)
{
	u = malloc(sizeof(*u));
	cr_assert_not_null(u);
	level = changes = 0;
	uart_init(u, record_irq, NULL, -1);
}

static void teardown(void)
{
	uart_exit(u);
	free(u);
}

TestSuite(uart, .init = setup, .fini = teardown);

static void send(const char *s)
{
	while (*s)
		uart_write(u, THR, (uint8_t)*s++);
}

Test(uart, output_is_logged_in_order)
{
	char buf[64];
	size_t n;

	send("hello, ");
	send("guest\n");
	n = uart_log(u, buf, sizeof(buf));
	cr_assert_eq(n, 13);
	cr_assert_arr_eq(buf, "hello, guest\n", 13);
}

Test(uart, log_keeps_the_newest_bytes)
{
	static char buf[UART_LOG_SIZE];
	size_t n;

	for (unsigned i = 0; i < UART_LOG_SIZE + 100; i++)
		uart_write(u, THR, (uint8_t)(i % 251));
	n = uart_log(u, buf, sizeof(buf));
	cr_assert_eq(n, UART_LOG_SIZE);
	cr_assert_eq((uint8_t)buf[0], 100 % 251);
	cr_assert_eq((uint8_t)buf[n - 1], (UART_LOG_SIZE + 99) % 251);

	/* A short buffer gets the newest bytes. */
	cr_assert_eq(uart_log(u, buf, 2), 2);
	cr_assert_eq((uint8_t)buf[1], (UART_LOG_SIZE + 99) % 251);
}

Test(uart, transmitter_is_always_empty)
{
	cr_assert_eq(uart_read(u, LSR) & 0x60, 0x60);
	send("x");
	cr_assert_eq(uart_read(u, LSR) & 0x60, 0x60);
}

/* The 8250 driver's startup check: THRE must be reported again after
 * IER is cleared and THRI set once more, or the port is called buggy. */
Test(uart, iir_reports_thre_each_time_ier_enables_it)
{
	uart_write(u, IER, 0x02);
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x02);
	uart_write(u, IER, 0x00);
	uart_write(u, IER, 0x02);
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x02);
}

Test(uart, reading_iir_acknowledges_thre_until_the_next_byte)
{
	uart_write(u, IER, 0x02);
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x02);
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x01);
	send("a");
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x02);
}

Test(uart, no_interrupt_while_thri_is_off)
{
	send("abc");
	cr_assert_eq(uart_read(u, IIR) & 0x0f, 0x01);
	cr_assert_eq(level, 0);
	cr_assert_eq(changes, 0);
}

Test(uart, irq_line_follows_the_pending_interrupt)
{
	uart_write(u, IER, 0x02);
	cr_assert_eq(level, 1);
	uart_read(u, IIR);
	cr_assert_eq(level, 0);
	send("z");
	cr_assert_eq(level, 1);
	uart_write(u, IER, 0x00);
	cr_assert_eq(level, 0);
	cr_assert_eq(changes, 4);
}

Test(uart, enabled_fifo_shows_in_iir)
{
	cr_assert_eq(uart_read(u, IIR) & 0xc0, 0x00);
	uart_write(u, FCR, 0x07);
	cr_assert_eq(uart_read(u, IIR) & 0xc0, 0xc0);
}

Test(uart, loopback_reflects_modem_lines_and_hides_output)
{
	char buf[8];

	uart_write(u, MCR, 0x10 | 0x0a); /* loop, RTS, OUT2 */
	cr_assert_eq(uart_read(u, MSR) & 0xf0, 0x90);
	uart_write(u, MCR, 0x1f);
	cr_assert_eq(uart_read(u, MSR) & 0xf0, 0xf0);
	send("probe");
	cr_assert_eq(uart_log(u, buf, sizeof(buf)), 0);
	uart_write(u, MCR, 0x03);
	cr_assert_eq(uart_read(u, MSR) & 0xf0, 0xb0);
}

Test(uart, divisor_latch_shadows_data_and_ier)
{
	char buf[8];

	uart_write(u, LCR, 0x83);
	uart_write(u, THR, 0x01);
	uart_write(u, IER, 0x00);
	cr_assert_eq(uart_read(u, THR), 0x01);
	cr_assert_eq(uart_read(u, IER), 0x00);
	cr_assert_eq(uart_log(u, buf, sizeof(buf)), 0);
	uart_write(u, LCR, 0x03);
	cr_assert_eq(uart_read(u, LCR), 0x03);
	cr_assert_eq(uart_read(u, IER), 0x00);
}

Test(uart, scratch_register_keeps_its_value)
{
	uart_write(u, SCR, 0x5a);
	cr_assert_eq(uart_read(u, SCR), 0x5a);
	uart_write(u, SCR, 0xa5);
	cr_assert_eq(uart_read(u, SCR), 0xa5);
}

Test(uart, first_byte_is_timestamped)
{
	cr_assert_eq(u->first_byte_ns, 0);
	send("x");
	cr_assert_neq(u->first_byte_ns, 0);
}

Test(uart, mark_is_timestamped_when_first_printed)
{
	uart_set_mark(u, "READY");
	send("REA");
	send("not READ");
	cr_assert_eq(u->mark_ns, 0);
	send("Y\nagent: READY\n");
	cr_assert_neq(u->mark_ns, 0);
}
