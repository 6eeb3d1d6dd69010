/* SPDX-License-Identifier: BSD-3-Clause */
/* mustangd configuration: every option good and bad, the file format, the
 * command line over the file, and the cross-field checks (control/config.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "control/config.h"

static char err[512];

/* Set one option as the command line would ("--key"). */
static int set(struct mst_config *c, const char *key, const char *value)
{
	char where[64];

	snprintf(where, sizeof(where), "--%s", key);
	err[0] = '\0';
	return mst_config_set(c, key, value, where, err, sizeof(err));
}

static void assert_good(struct mst_config *c, const char *key, const char *value)
{
	if (set(c, key, value) != 0)
		fail_msg("--%s %s rejected: %s", key, value, err);
}

static void assert_bad(struct mst_config *c, const char *key, const char *value,
		       const char *msg)
{
	int rc = set(c, key, value);

	if (rc != -EINVAL)
		fail_msg("--%s \"%s\" gave %d, want -EINVAL", key, value, rc);
	if (msg != NULL && strcmp(err, msg) != 0)
		fail_msg("--%s \"%s\": message \"%s\", want \"%s\"", key, value, err, msg);
	assert_null(strchr(err, '\n'));
}

/* argv from a NULL-terminated list; argv[0] is "mustangd". */
static int args(struct mst_config *c, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"mustangd";
	va_start(ap, c);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return mst_config_from_args(c, argc, argv, err, sizeof(err));
}

static char tmp_path[64];

/* Write `text` to a fresh temporary file; its name in tmp_path. */
static const char *write_file(const char *text)
{
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/mst_conf_XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmp_path;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void test_config_defaults(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_int_equal(c.n_ports, 0);
	assert_int_equal(c.ip, 0);
	assert_int_equal(c.gw, 0);
	assert_int_equal(c.mtu, 1500);
	assert_int_equal(c.engines, 1);
	assert_int_equal(c.mode, MST_MODE_SPREADING);
	assert_int_equal(c.n_cores, 0);
	assert_string_equal(c.ctl_path, "/run/mustang/mustang.sock");
	assert_int_equal(c.log_level, MST_LOG_INFO);
	assert_int_equal(c.services, 0);
	assert_false(c.hugepages);
	assert_int_equal(c.mem_mb, 512);
	assert_int_equal(c.mbufs, 8192);
	assert_int_equal(c.idle_sleep_max_us, 200);
	assert_int_equal(c.compact_bound_us, 100);
	assert_int_equal(c.arp_timeout_ms, 60000);
	assert_string_equal(mst_sched_mode_name(MST_MODE_COMPACTING), "compacting");
	assert_string_equal(mst_port_driver_name(MST_PORT_AF_XDP), "af_xdp");
}

static void test_config_port_drivers(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_good(&c, "port", "af_xdp:iface=veth0");
	assert_int_equal(c.ports[0].driver, MST_PORT_AF_XDP);
	assert_string_equal(c.ports[0].iface, "veth0");
	assert_string_equal(c.ports[0].spec, "af_xdp:iface=veth0");
	assert_good(&c, "port", "af_packet:iface=mst-1.a_b");
	assert_int_equal(c.ports[1].driver, MST_PORT_AF_PACKET);
	assert_good(&c, "port", "memif:socket=/run/memif.sock,role=server");
	assert_int_equal(c.ports[2].driver, MST_PORT_MEMIF);
	assert_string_equal(c.ports[2].socket, "/run/memif.sock");
	assert_true(c.ports[2].memif_server);
	assert_good(&c, "port", "memif:role=client,socket=/tmp/m2");
	assert_false(c.ports[3].memif_server);
	assert_good(&c, "port", "ring");
	assert_int_equal(c.ports[4].driver, MST_PORT_RING);
	assert_good(&c, "port", "null");
	assert_int_equal(c.ports[5].driver, MST_PORT_NULL);
	assert_good(&c, "port", "pci:0000:03:00.0");
	assert_string_equal(c.ports[6].pci, "0000:03:00.0");
	assert_good(&c, "port", "pci:3B:1f.7");
	assert_string_equal(c.ports[7].pci, "0000:3b:1f.7");
	assert_int_equal(c.n_ports, 8);
	assert_bad(&c, "port", "ring", "--port: too many ports (at most 8)");
}

static void test_config_port_errors(void **state)
{
	struct mst_config c;
	char longname[300];

	(void)state;
	mst_config_defaults(&c);
	assert_bad(&c, "port", "af_xdp", "--port af_xdp: missing iface=");
	assert_bad(&c, "port", "af_xdp:", "--port af_xdp: missing iface=");
	assert_bad(&c, "port", "af_packet:queues=2",
		   "--port af_packet: unknown key \"queues\"");
	assert_bad(&c, "port", "af_xdp:iface=a,iface=b", "--port af_xdp: iface= given twice");
	assert_bad(&c, "port", "af_xdp:iface", "--port af_xdp: \"iface\" is not key=value");
	assert_bad(&c, "port", "af_xdp:iface=", "--port af_xdp: \"iface=\" is not key=value");
	assert_bad(&c, "port", "af_xdp:iface=abcdefghijklmnop", NULL); /* 16 >= IFNAMSIZ */
	assert_good(&c, "port", "af_xdp:iface=abcdefghijklmno");    /* 15 fits */
	assert_bad(&c, "port", "af_xdp:iface=a/b", NULL);
	assert_bad(&c, "port", "af_xdp:iface=a b", NULL);
	assert_bad(&c, "port", "af_xdp:iface=..", NULL);
	assert_bad(&c, "port", "af_packet:iface=abcdefghijklmno",
		   "--port: \"af_packet:iface=abcdefghijklmno\" uses the same device as port "
		   "\"af_xdp:iface=abcdefghijklmno\"");
	assert_bad(&c, "port", "memif:socket=/x", "--port memif: missing role= (server or client)");
	assert_bad(&c, "port", "memif:role=server", "--port memif: missing socket=");
	assert_bad(&c, "port", "memif:socket=/x,role=master",
		   "--port memif: role must be server or client, not \"master\"");
	assert_bad(&c, "port", "memif:iface=x", "--port memif: unknown key \"iface\"");
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "memif:role=server,socket=/", 26);
	longname[26 + 108] = '\0'; /* a 109-byte path */
	assert_bad(&c, "port", longname, "--port memif: socket path longer than 107 bytes");
	longname[26 + 107] = '\0'; /* 108 bytes: still one too many for sun_path */
	assert_bad(&c, "port", longname, NULL);
	longname[26 + 107 - 1] = '\0'; /* 107 bytes: fits */
	assert_good(&c, "port", longname);
	assert_bad(&c, "port", "ring:x", "--port ring: takes no arguments");
	assert_bad(&c, "port", "null:", "--port null: takes no arguments");
	assert_bad(&c, "port", "tap:iface=x",
		   "--port: unknown driver \"tap\" (af_xdp, af_packet, memif, ring, null, pci)");
	assert_bad(&c, "port", "", "--port: missing value");
	assert_bad(&c, "port", "pci:", NULL);
	assert_bad(&c, "port", "pci", NULL);
	assert_bad(&c, "port", "pci:03:00", NULL);
	assert_bad(&c, "port", "pci:03:20.0", NULL); /* device > 0x1f */
	assert_bad(&c, "port", "pci:03:00.8", NULL); /* function > 7 */
	assert_bad(&c, "port", "pci:0000:03:00.0x", NULL);
	assert_bad(&c, "port", "pci:000g:03:00.0",
		   "--port pci: \"000g:03:00.0\" is not a PCI address (dddd:bb:dd.f or bb:dd.f)");
	assert_good(&c, "port", "pci:03:00.1");
	assert_bad(&c, "port", "pci:0000:03:00.1", NULL); /* same device, other spelling */
	assert_int_equal(c.n_ports, 3);
}

static void test_config_ip_and_gw(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_good(&c, "ip", "10.0.0.1/24");
	assert_int_equal(c.ip, ip4("10.0.0.1"));
	assert_int_equal(c.prefix_len, 24);
	assert_good(&c, "ip", "192.168.1.1/32");
	assert_good(&c, "ip", "10.0.0.0/31"); /* RFC 3021 point-to-point */
	assert_bad(&c, "ip", "10.0.0.1",
		   "--ip: \"10.0.0.1\" needs a prefix length, e.g. 10.0.0.1/24");
	assert_bad(&c, "ip", "10.0.0.1/", "--ip: \"\" is not a number");
	assert_bad(&c, "ip", "10.0.0.1/0", "--ip: 0 is out of range (1..32)");
	assert_bad(&c, "ip", "10.0.0.1/33", "--ip: 33 is out of range (1..32)");
	assert_bad(&c, "ip", "10.0.0.1/-1", NULL);
	assert_bad(&c, "ip", "10.0.0.1/ 24", NULL);
	assert_bad(&c, "ip", "10.0.1/24", "--ip: \"10.0.1/24\" is not an IPv4 address/prefix");
	assert_bad(&c, "ip", "10.0.0.256/24", NULL);
	assert_bad(&c, "ip", "/24", NULL);
	assert_bad(&c, "ip", "0.0.0.0/8", NULL);
	assert_bad(&c, "ip", "127.0.0.1/8", NULL);
	assert_bad(&c, "ip", "224.0.0.1/24", NULL);
	assert_bad(&c, "ip", "255.255.255.255/32", NULL);
	assert_bad(&c, "ip", "10.0.0.0/24",
		   "--ip: 10.0.0.0 is the network or broadcast address of /24");
	assert_bad(&c, "ip", "10.0.0.255/24", NULL);
	assert_int_equal(c.ip, ip4("10.0.0.0")); /* failures left the /31 in place */

	assert_good(&c, "gw", "10.0.0.254");
	assert_int_equal(c.gw, ip4("10.0.0.254"));
	assert_good(&c, "gw", "none");
	assert_int_equal(c.gw, 0);
	assert_bad(&c, "gw", "10.0.0.254/24", "--gw: \"10.0.0.254/24\" is not an IPv4 address");
	assert_bad(&c, "gw", "gateway", NULL);
	assert_bad(&c, "gw", "239.1.1.1", NULL);
}

static void test_config_numbers(void **state)
{
	static const struct {
		const char *key;
		const char *lo, *hi, *below, *above;
	} nums[] = {
		{ "mtu", "68", "9000", "67", "9001" },
		{ "engines", "1", "64", "0", "65" },
		{ "mem-mb", "64", "65536", "63", "65537" },
		{ "mbufs", "1024", "1048576", "1023", "1048577" },
		{ "idle-sleep-max-us", "1", "1000000", "0", "1000001" },
		{ "compact-bound-us", "1", "1000000", "0", "1000001" },
		{ "arp-timeout-ms", "1000", "3600000", "999", "3600001" },
		{ "pony-peer-share", "1", "4096", "0", "4097" },
		{ "pony-local-reserve", "1", "4095", "0", "4096" },
		{ "pony-rx-stall-ms", "1", "3600000", "0", "3600001" },
	};
	static const char *const not_numbers[] = {
		"", "abc", "-1", "+5", " 100", "100 ", "0x10", "1e3", "12abc", "1.5",
	};
	struct mst_config c;
	char msg[128];

	(void)state;
	mst_config_defaults(&c);
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		assert_good(&c, nums[i].key, nums[i].lo);
		assert_good(&c, nums[i].key, nums[i].hi);
		assert_bad(&c, nums[i].key, nums[i].below, NULL);
		assert_bad(&c, nums[i].key, nums[i].above, NULL);
		assert_bad(&c, nums[i].key, "99999999999999999999999999", NULL); /* overflow */
		for (size_t j = 1; j < sizeof(not_numbers) / sizeof(not_numbers[0]); j++) {
			snprintf(msg, sizeof(msg), "--%s: \"%s\" is not a number", nums[i].key,
				 not_numbers[j]);
			assert_bad(&c, nums[i].key, not_numbers[j], msg);
		}
	}
	assert_bad(&c, "mtu", "abc", "--mtu: \"abc\" is not a number");
	assert_bad(&c, "mtu", "9001", "--mtu: 9001 is out of range (68..9000)");
	assert_bad(&c, "mtu", "18446744073709551616",
		   "--mtu: 18446744073709551616 is out of range (68..9000)");
	assert_good(&c, "mtu", "01500");
	assert_int_equal(c.mtu, 1500);
	assert_good(&c, "engines", "4");
	assert_int_equal(c.engines, 4);
	assert_good(&c, "arp-timeout-ms", "5000");
	assert_int_equal(c.arp_timeout_ms, 5000);
	assert_good(&c, "mem-mb", "1024");
	assert_int_equal(c.mem_mb, 1024);
	assert_good(&c, "mbufs", "16384");
	assert_int_equal(c.mbufs, 16384);
	assert_good(&c, "idle-sleep-max-us", "50");
	assert_int_equal(c.idle_sleep_max_us, 50);
	assert_good(&c, "compact-bound-us", "75");
	assert_int_equal(c.compact_bound_us, 75);
	assert_good(&c, "pony-peer-share", "64");
	assert_int_equal(c.pony_peer_share, 64);
	assert_good(&c, "pony-local-reserve", "2048");
	assert_int_equal(c.pony_local_reserve, 2048);
	assert_good(&c, "pony-rx-stall-ms", "500");
	assert_int_equal(c.pony_rx_stall_ms, 500);
}

static void test_config_words(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_good(&c, "mode", "dedicated");
	assert_int_equal(c.mode, MST_MODE_DEDICATED);
	assert_good(&c, "mode", "compacting");
	assert_int_equal(c.mode, MST_MODE_COMPACTING);
	assert_good(&c, "mode", "spreading");
	assert_int_equal(c.mode, MST_MODE_SPREADING);
	assert_bad(&c, "mode", "Dedicated",
		   "--mode: \"Dedicated\" is not one of dedicated, spreading, compacting");
	assert_good(&c, "log-level", "debug");
	assert_int_equal(c.log_level, MST_LOG_DEBUG);
	assert_good(&c, "log-level", "err");
	assert_int_equal(c.log_level, MST_LOG_ERR);
	assert_good(&c, "log-level", "warn");
	assert_int_equal(c.log_level, MST_LOG_WARN);
	assert_bad(&c, "log-level", "error", NULL);
	assert_good(&c, "hugepages", "yes");
	assert_true(c.hugepages);
	assert_good(&c, "hugepages", "no");
	assert_false(c.hugepages);
	assert_bad(&c, "hugepages", "true", "--hugepages: \"true\" is not one of yes, no");
	assert_good(&c, "services", "echo");
	assert_int_equal(c.services, MST_SVC_ECHO);
	assert_good(&c, "services", "none");
	assert_int_equal(c.services, 0);
	assert_good(&c, "services", "echo,echo");
	assert_int_equal(c.services, MST_SVC_ECHO);
	assert_good(&c, "services", "echo,discard,chargen");
	assert_int_equal(c.services, MST_SVC_ECHO | MST_SVC_DISCARD | MST_SVC_CHARGEN);
	assert_bad(&c, "services", "daytime",
		   "--services: unknown service \"daytime\" (echo, discard, chargen, or none alone)");
	assert_good(&c, "tcp-cc", "newreno");
	assert_string_equal(c.tcp_cc, "newreno");
	assert_bad(&c, "tcp-cc", "bbr", "--tcp-cc: unknown congestion control \"bbr\" (cubic, newreno)");
	assert_good(&c, "tcp-syncookies", "no");
	assert_false(c.tcp_syncookies);
	assert_bad(&c, "tcp-syncookies", "maybe", NULL);
	assert_good(&c, "tcp-rcvbuf", "65536");
	assert_int_equal(c.tcp_rcvbuf, 65536);
	assert_bad(&c, "tcp-rcvbuf", "100", NULL);
	assert_int_equal(c.tcp_eph_lo, 32768);
	assert_int_equal(c.tcp_eph_hi, 60999);
	assert_good(&c, "tcp-ephemeral-ports", "40000-40007");
	assert_int_equal(c.tcp_eph_lo, 40000);
	assert_int_equal(c.tcp_eph_hi, 40007);
	assert_good(&c, "tcp-ephemeral-ports", "5000-5000");
	assert_int_equal(c.tcp_eph_hi, 5000);
	assert_bad(&c, "tcp-ephemeral-ports", "6000-5000",
		   "--tcp-ephemeral-ports: 6000-5000 is an empty range");
	assert_bad(&c, "tcp-ephemeral-ports", "0-5000", NULL);
	assert_bad(&c, "tcp-ephemeral-ports", "5000-65536", NULL);
	assert_bad(&c, "tcp-ephemeral-ports", "5000", NULL);
	assert_bad(&c, "tcp-ephemeral-ports", "-5000", NULL);
	assert_bad(&c, "tcp-ephemeral-ports", "123456789-1", NULL);
	assert_int_equal(c.tcp_eph_lo, 5000); /* a bad value changes nothing */
	assert_int_equal(c.tcp_tw_reuse_delay_ms, 1000);
	assert_good(&c, "tcp-tw-reuse-delay-ms", "1");
	assert_int_equal(c.tcp_tw_reuse_delay_ms, 1);
	assert_bad(&c, "tcp-tw-reuse-delay-ms", "0", NULL);
	assert_bad(&c, "services", "echo,", NULL);
	assert_bad(&c, "services", "echo,none", NULL);
	assert_bad(&c, "services", ",echo", NULL);
	assert_good(&c, "ctl", "/tmp/x.sock");
	assert_string_equal(c.ctl_path, "/tmp/x.sock");
	assert_bad(&c, "ctl", "", "--ctl: missing value");
	assert_bad(&c, "ctl",
		   "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		   "--ctl: socket path longer than 107 bytes");
	assert_bad(&c, "nosuch", "1", "--nosuch: unknown option \"nosuch\"");
	assert_bad(&c, "config", "x", "--config: only valid on the command line");
}

/* Observability options: the values docs/observability.md names, and
 * everything else refused with the option's name. */
static void test_config_observability(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_string_equal(c.flow_log, "");
	assert_int_equal(c.flow_interval_s, 60);
	assert_good(&c, "flow-log", "/var/log/flows.jsonl");
	assert_string_equal(c.flow_log, "/var/log/flows.jsonl");
	assert_good(&c, "flow-log", "on");
	assert_good(&c, "flow-log", "off");
	assert_string_equal(c.flow_log, "");
	assert_bad(&c, "flow-log", "flows.jsonl",
		   "--flow-log: wants off, on or an absolute file path, not \"flows.jsonl\"");
	assert_good(&c, "flow-ring", "1024");
	assert_int_equal(c.flow_ring, 1024);
	assert_bad(&c, "flow-ring", "1000", "--flow-ring: wants a power of 2, not 1000");
	assert_bad(&c, "flow-ring", "32", NULL);
	assert_good(&c, "flow-interval-s", "0");
	assert_bad(&c, "flow-interval-s", "-1", NULL);
	assert_bad(&c, "flow-log-max-mb", "0", NULL);
	assert_good(&c, "metrics-listen", "127.0.0.1:9464");
	assert_string_equal(c.metrics_listen, "127.0.0.1:9464");
	assert_bad(&c, "metrics-listen", "localhost:9464", NULL);
	assert_bad(&c, "metrics-listen", "127.0.0.1", NULL);
	assert_bad(&c, "metrics-listen", "127.0.0.1:0", NULL);
	assert_bad(&c, "metrics-listen", "127.0.0.1:65536", NULL);
	assert_bad(&c, "metrics-listen", ":9464", NULL);
	assert_good(&c, "metrics-listen", "off");
	assert_string_equal(c.metrics_listen, "");
}

static void test_config_cores(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_good(&c, "cores", "0-3,6");
	assert_int_equal(c.n_cores, 5);
	assert_int_equal(c.cores[0], 0);
	assert_int_equal(c.cores[3], 3);
	assert_int_equal(c.cores[4], 6);
	assert_good(&c, "cores", "7,2,2,1-3,3-3"); /* de-duplicated, ascending */
	assert_int_equal(c.n_cores, 4);
	assert_int_equal(c.cores[0], 1);
	assert_int_equal(c.cores[1], 2);
	assert_int_equal(c.cores[2], 3);
	assert_int_equal(c.cores[3], 7);
	assert_good(&c, "cores", "255");
	assert_int_equal(c.n_cores, 1);
	assert_int_equal(c.cores[0], 255);
	assert_good(&c, "cores", "0-255");
	assert_int_equal(c.n_cores, 256);
	assert_int_equal(c.cores[255], 255);
	assert_bad(&c, "cores", "256", "--cores: CPU 256 is out of range (0..255)");
	assert_bad(&c, "cores", "0-99999999999999999999", NULL);
	assert_bad(&c, "cores", "3-1", "--cores: range 3-1 is reversed");
	assert_bad(&c, "cores", "0-3,,6", "--cores: \"0-3,,6\" is not a CPU list (e.g. 0-3,6)");
	assert_bad(&c, "cores", "1,", NULL);
	assert_bad(&c, "cores", ",1", NULL);
	assert_bad(&c, "cores", "1-", NULL);
	assert_bad(&c, "cores", "-1", NULL);
	assert_bad(&c, "cores", "1 2", NULL);
	assert_bad(&c, "cores", "1-2-3", NULL);
	assert_bad(&c, "cores", "a", NULL);
	assert_bad(&c, "cores", " 1", NULL);
	assert_int_equal(c.n_cores, 256); /* failures changed nothing */
}

static void test_config_file_comments_and_blanks(void **state)
{
	struct mst_config c;
	const char *path = write_file("# mustangd test config\n"
				      "\n"
				      "   \t\n"
				      "port = af_packet:iface=veth0\n"
				      "  port=ring  \n"
				      "ip = 10.1.0.2/16\n"
				      "\t# indented comment\n"
				      "gw = 10.1.0.1\n"
				      "mtu = 9000\n"
				      "services = echo\n"
				      "ctl = /tmp/a b.sock\n"
				      "mode = compacting"); /* no final newline */

	(void)state;
	mst_config_defaults(&c);
	assert_int_equal(mst_config_load_file(&c, path, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c.n_ports, 2);
	assert_string_equal(c.ports[0].iface, "veth0");
	assert_int_equal(c.ports[1].driver, MST_PORT_RING);
	assert_int_equal(c.ip, ip4("10.1.0.2"));
	assert_int_equal(c.prefix_len, 16);
	assert_int_equal(c.gw, ip4("10.1.0.1"));
	assert_int_equal(c.mtu, 9000);
	assert_int_equal(c.services, MST_SVC_ECHO);
	assert_string_equal(c.ctl_path, "/tmp/a b.sock");
	assert_int_equal(c.mode, MST_MODE_COMPACTING);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), 0);
}

static void file_error(const char *text, int line, const char *msg_after_line)
{
	struct mst_config c;
	char want[600];
	const char *path = write_file(text);

	mst_config_defaults(&c);
	assert_int_equal(mst_config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg_after_line);
	assert_string_equal(err, want);
	unlink(path);
}

static void test_config_file_errors_name_file_and_line(void **state)
{
	(void)state;
	file_error("mtu = 1500\n\n# x\nfoo = 1\n", 4, "unknown option \"foo\"");
	file_error("mtu = abc\n", 1, "mtu: \"abc\" is not a number");
	file_error("\n\nport = af_xdp\n", 3, "port af_xdp: missing iface=");
	file_error("mtu 1500\n", 1, "expected \"key = value\", got \"mtu 1500\"");
	file_error("mtu =\n", 1, "mtu: missing value");
	file_error(" = 5\n", 1, "missing option name before '='");
	file_error("config = other.conf\n", 1, "config: only valid on the command line");
	file_error("mtu = 1500 # inline comments are not comments\n", 1,
		   "mtu: \"1500 # inline comments are not comments\" is not a number");
}

static void test_config_file_line_length(void **state)
{
	struct mst_config c;
	char text[1200], want[128];
	const char *path;

	(void)state;
	/* 1024 characters is the longest accepted line ... */
	memset(text, ' ', sizeof(text));
	memcpy(text, "mtu = 1400", 10);
	text[1024] = '\n';
	text[1025] = '\0';
	path = write_file(text);
	mst_config_defaults(&c);
	assert_int_equal(mst_config_load_file(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.mtu, 1400);
	unlink(path);
	/* ... 1025 is one too many, with or without its newline. */
	text[1024] = ' ';
	text[1025] = '\n';
	text[1026] = '\0';
	path = write_file(text);
	assert_int_equal(mst_config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: line longer than 1024 characters", path);
	assert_string_equal(err, want);
	unlink(path);
	text[1025] = '\0';
	path = write_file(text);
	assert_int_equal(mst_config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	unlink(path);
}

static void test_config_missing_file(void **state)
{
	struct mst_config c;

	(void)state;
	mst_config_defaults(&c);
	assert_int_equal(mst_config_load_file(&c, "/nonexistent/mustang.conf", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "cannot open /nonexistent/mustang.conf: No such file or directory");
	assert_int_equal(args(&c, "--config", "/nonexistent/mustang.conf", NULL), -ENOENT);
	assert_string_equal(err, "cannot open /nonexistent/mustang.conf: No such file or directory");
}

static void test_config_command_line_overrides_file(void **state)
{
	struct mst_config c;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "%s",
		 write_file("mtu = 9000\nengines = 2\nport = ring\nport = null\nip = 10.0.0.1/24\n"));
	/* --config is applied first wherever it stands; the rest in order. */
	assert_int_equal(args(&c, "--mtu", "1400", "--engines=3", "--config", path,
			      "--engines", "4", NULL),
			 0);
	assert_int_equal(c.mtu, 1400);
	assert_int_equal(c.engines, 4);
	assert_int_equal(c.n_ports, 2); /* no --port: the file's ports */
	assert_int_equal(c.ip, ip4("10.0.0.1"));
	/* --port on the command line replaces the file's list. */
	assert_int_equal(args(&c, "--config=", NULL), -EINVAL);
	assert_int_equal(args(&c, "--port", "af_xdp:iface=veth1", "--config", path,
			      "--port=memif:socket=/tmp/m,role=client", NULL),
			 0);
	assert_int_equal(c.n_ports, 2);
	assert_int_equal(c.ports[0].driver, MST_PORT_AF_XDP);
	assert_int_equal(c.ports[1].driver, MST_PORT_MEMIF);
	assert_int_equal(c.mtu, 9000);
	unlink(path);
}

static void test_config_args_syntax(void **state)
{
	struct mst_config c;

	(void)state;
	assert_int_equal(args(&c, NULL), 0);
	assert_int_equal(c.mtu, 1500);
	assert_int_equal(args(&c, "--mtu=1280", "--log-level", "debug", "--cores=0-1", NULL), 0);
	assert_int_equal(c.mtu, 1280);
	assert_int_equal(c.log_level, MST_LOG_DEBUG);
	assert_int_equal(c.n_cores, 2);
	assert_int_equal(args(&c, "--mtu", NULL), -EINVAL);
	assert_string_equal(err, "--mtu: missing value");
	assert_int_equal(args(&c, "--mtu=", NULL), -EINVAL);
	assert_string_equal(err, "--mtu: missing value");
	assert_int_equal(args(&c, "--mtu", "abc", NULL), -EINVAL);
	assert_string_equal(err, "--mtu: \"abc\" is not a number");
	assert_int_equal(args(&c, "--foo", "1", NULL), -EINVAL);
	assert_string_equal(err, "unknown option \"--foo\" (see --help)");
	assert_int_equal(args(&c, "--foo=1", NULL), -EINVAL);
	assert_string_equal(err, "unknown option \"--foo\" (see --help)");
	assert_int_equal(args(&c, "mtu", NULL), -EINVAL);
	assert_string_equal(err, "unexpected argument \"mtu\" (see --help)");
	assert_int_equal(args(&c, "-m", NULL), -EINVAL);
	assert_int_equal(args(&c, "--", NULL), -EINVAL);
	assert_int_equal(args(&c, "--config", "a", "--config", "b", NULL), -EINVAL);
	assert_string_equal(err, "--config: given twice");
	/* A value may look like an option. */
	assert_int_equal(args(&c, "--ctl", "--mtu", NULL), 0);
	assert_string_equal(c.ctl_path, "--mtu");
	/* --help and --version print to stdout and return 1, even after errors. */
	assert_int_equal(args(&c, "--help", NULL), 1);
	assert_int_equal(args(&c, "--foo", "--version", NULL), 1);
	assert_int_equal(args(&c, "--mtu", "1", "-h", NULL), 1);
}

static void test_config_validate(void **state)
{
	struct mst_config c;

	(void)state;
	assert_int_equal(args(&c, NULL), 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no port configured"));
	assert_int_equal(args(&c, "--port", "ring", NULL), 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no address configured"));
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", NULL), 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), 0);

	/* The gateway must be on-link and not ourselves. */
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", "--gw", "10.0.1.1",
			      NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--gw: 10.0.1.1 is not on-link with --ip 10.0.0.1/24");
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/23", "--gw", "10.0.1.1",
			      NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", "--gw", "10.0.0.1",
			      NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--gw: 10.0.0.1 is our own address");

	/* Dedicated mode pins an engine per core. */
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", "--mode", "dedicated",
			      "--engines", "2", NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "need --cores with at least 2 CPUs (have 0)"));
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", "--mode", "dedicated",
			      "--engines", "2", "--cores", "1", NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(args(&c, "--port", "ring", "--ip", "10.0.0.1/24", "--mode", "dedicated",
			      "--engines", "2", "--cores", "0,1", NULL),
			 0);
	assert_int_equal(mst_config_validate(&c, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_port_drivers),
		cmocka_unit_test(test_config_port_errors),
		cmocka_unit_test(test_config_ip_and_gw),
		cmocka_unit_test(test_config_numbers),
		cmocka_unit_test(test_config_words),
		cmocka_unit_test(test_config_observability),
		cmocka_unit_test(test_config_cores),
		cmocka_unit_test(test_config_file_comments_and_blanks),
		cmocka_unit_test(test_config_file_errors_name_file_and_line),
		cmocka_unit_test(test_config_file_line_length),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_command_line_overrides_file),
		cmocka_unit_test(test_config_args_syntax),
		cmocka_unit_test(test_config_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
