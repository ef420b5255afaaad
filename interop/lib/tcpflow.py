#!/usr/bin/env python3
"""
The crosstraffic test's competing TCP flow, in place of the runner's iperf containers
(`iperf -c $CLIENT -t 3600 -Z $IPERF_CONGESTION` on the server side, `iperf -s` on the
client side): one greedy bulk TCP connection from the server side to the client side.

  tcpflow.py sink HOST PORT [INTERVAL_S]
      accepts connections, reads and discards; every INTERVAL_S (0.1) prints
      "<epoch ms> <bytes received so far>", and a JSON summary on SIGTERM/SIGINT
  tcpflow.py send HOST PORT CC
      connects (retrying for 10 s) with congestion control CC set on the socket
      (setsockopt TCP_CONGESTION, as iperf -Z does), writes as fast as TCP allows; prints
      "connected cc=<cc>", then once a second and on SIGTERM/SIGINT one JSON line with
      bytes sent and the kernel's tcp_info (srtt, cwnd, retransmissions)
  tcpflow.py txcsum-off DEV
      turns the device's transmit checksum offload off (what `ethtool -K DEV tx off` does,
      through the SIOCETHTOOL ioctl, without needing ethtool): packets leaving through a
      VXLAN device otherwise carry an unfinished inner TCP checksum, which nothing completes
      once the datagram has crossed the user-space relay, so the receiver drops them

Python (stdlib only) rather than Node.js because Node.js cannot set TCP_CONGESTION on a
socket, and a network namespace may only default to the host's allowed algorithms
(net.ipv4.tcp_allowed_congestion_control, "reno bbr" here; cubic is refused with EPERM).
"""
import json
import signal
import socket
import struct
import sys
import threading
import time


def now_ms():
    return time.time() * 1000.0


def sink(host, port, interval):
    received = [0]
    conns = [0]
    lock = threading.Lock()
    srv = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(8)
    started = now_ms()

    def reader(conn):
        buf = bytearray(1 << 18)
        view = memoryview(buf)
        while True:
            try:
                n = conn.recv_into(view)
            except OSError:
                break
            if n == 0:
                break
            with lock:
                received[0] += n
        conn.close()

    def acceptor():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns[0] += 1
            threading.Thread(target=reader, args=(conn,), daemon=True).start()

    def finish(*_):
        with lock:
            total = received[0]
        print(json.dumps({'role': 'sink', 'bytes': total, 'connections': conns[0], 'ms': round(now_ms() - started)}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print('listening', flush=True)
    threading.Thread(target=acceptor, daemon=True).start()
    while True:
        time.sleep(interval)
        with lock:
            total = received[0]
        print(f'{now_ms():.1f} {total}', flush=True)


# struct tcp_info (linux/tcp.h): 8 one-byte fields, then u32s from tcpi_rto on.
TCP_INFO_U32 = ['rto', 'ato', 'snd_mss', 'rcv_mss', 'unacked', 'sacked', 'lost', 'retrans', 'fackets',
                'last_data_sent', 'last_ack_sent', 'last_data_recv', 'last_ack_recv', 'pmtu', 'rcv_ssthresh',
                'rtt', 'rttvar', 'snd_ssthresh', 'snd_cwnd', 'advmss', 'reordering', 'rcv_rtt', 'rcv_space',
                'total_retrans']


def tcp_info(sock):
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8 + 4 * len(TCP_INFO_U32))
    except OSError:
        return {}
    vals = dict(zip(TCP_INFO_U32, struct.unpack_from(f'{len(TCP_INFO_U32)}I', raw, 8)))
    return {'srttMs': round(vals['rtt'] / 1000, 1), 'cwnd': vals['snd_cwnd'], 'mss': vals['snd_mss'],
            'totalRetrans': vals['total_retrans'], 'ssthresh': vals['snd_ssthresh']}


def send(host, port, cc):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    deadline = time.time() + 10
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
        try:
            sock.connect((host, port))
            break
        except OSError as e:
            sock.close()
            if time.time() > deadline:
                print(f'connect failed: {e}', flush=True)
                sys.exit(1)
            time.sleep(0.2)
    got = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b'\0')[0].decode()
    print(f'connected cc={got}', flush=True)
    started = now_ms()
    sent = [0]

    def status(final):
        line = {'role': 'sender', 'cc': got, 'bytes': sent[0], 'ms': round(now_ms() - started), **tcp_info(sock)}
        if final:
            line['final'] = True
        print(json.dumps(line), flush=True)

    def finish(*_):
        status(True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    chunk = b'\0' * (1 << 17)
    last = time.time()
    while True:
        try:
            sent[0] += sock.send(chunk)
        except OSError as e:
            print(f'send failed: {e}', flush=True)
            status(True)
            sys.exit(1)
        if time.time() - last >= 1:
            last = time.time()
            status(False)


SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


def ethtool_value(dev, cmd, data=0):
    import ctypes
    import fcntl
    value = ctypes.create_string_buffer(struct.pack('II', cmd, data), 8)
    # struct ifreq: char ifr_name[16]; union { void *ifr_data; ... } (40 bytes on 64-bit)
    ifr = struct.pack('16sP', dev.encode(), ctypes.addressof(value)).ljust(40, b'\0')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack('II', value.raw)[1]


def txcsum_off(dev):
    ethtool_value(dev, ETHTOOL_STXCSUM, 0)
    if ethtool_value(dev, ETHTOOL_GTXCSUM) != 0:
        print(f'{dev}: transmit checksum offload still on', flush=True)
        sys.exit(1)


def main(argv):
    if len(argv) >= 3 and argv[0] == 'sink':
        sink(argv[1], int(argv[2]), float(argv[3]) if len(argv) > 3 else 0.1)
    elif len(argv) == 4 and argv[0] == 'send':
        send(argv[1], int(argv[2]), argv[3])
    elif len(argv) == 2 and argv[0] == 'txcsum-off':
        txcsum_off(argv[1])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == '__main__':
    main(sys.argv[1:])
