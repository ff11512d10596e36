/* A runaway guest task for the end-to-end suite: after a pause it takes
 * the only CPU at real-time priority and never gives it back, so the
 * agent (PID 1) stops answering while the vCPU stays busy. */
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

/* The kernel keeps 5% of each second for other tasks unless told not
 * to; a hang must be a hang. */
static void allow_full_rt(void)
{
	int fd = open("/proc/sys/kernel/sched_rt_runtime_us", O_WRONLY);

	if (fd < 0)
		_exit(2);
	if (write(fd, "-1", 2) != 2)
		_exit(3);
	close(fd);
}

int main(void)
{
	struct sched_param p = {.sched_priority = 99};

	allow_full_rt();

	/* Leave the host time to see the command that started us end. */
	sleep(1);

	if (sched_setscheduler(0, SCHED_FIFO, &p) < 0)
		return 4;
	for (;;)
		__asm__ volatile("" ::: "memory");
}
