package noded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// Multicast groups of NETLINK_ROUTE (linux/rtnetlink.h), which package
// syscall does not define.
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv6IfAddr = 0x100
)

// NetlinkWakeups returns a channel that receives (coalesced) whenever the
// kernel announces a link or address change in the process's network
// namespace, until ctx ends. It fails where netlink is unavailable; the
// Watcher then relies on polling alone.
func NetlinkWakeups(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("facts: netlink socket: %w", err)
	}
	sa := &syscall.SockaddrNetlink{
		Family: syscall.AF_NETLINK,
		Groups: rtmgrpLink | rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr,
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("facts: netlink bind: %w", err)
	}
	// A non-blocking descriptor wrapped in an os.File goes through the
	// runtime's poller, so Close unblocks the pending Read when ctx ends.
	f := os.NewFile(uintptr(fd), "netlink-route")
	ch := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			_, err := f.Read(buf)
			if err != nil {
				if ctx.Err() == nil {
					// ENOBUFS (the kernel dropped notifications) is not
					// fatal: wake up so the watcher re-reads everything.
					if errors.Is(err, syscall.ENOBUFS) {
						notify(ch)
						continue
					}
					if log != nil {
						log.Warn("netlink notifications stopped; relying on polling", "err", err)
					}
				}
				return
			}
			notify(ch)
		}
	}()
	return ch, nil
}

// notify sends on ch without blocking: one pending wake-up is enough.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
