package guest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
)

// Linux input events (linux/input-event-codes.h).
const (
	evKey    = 1
	keyPower = 116
	// eventSize is struct input_event on 64-bit: a timeval, type, code,
	// value.
	eventSize = 24
)

// watchPowerButton reports presses of the ACPI power button (the host's
// system_powerdown) on the returned channel. The button module makes it
// an input device named "Power Button"; without one nothing is reported
// and the host kills the machine after its grace.
func watchPowerButton() <-chan struct{} {
	pressed := make(chan struct{}, 1)
	names, _ := filepath.Glob("/sys/class/input/event*/device/name")
	for _, n := range names {
		b, _ := os.ReadFile(n)
		if strings.TrimSpace(string(b)) != "Power Button" {
			continue
		}
		ev := filepath.Base(filepath.Dir(filepath.Dir(n)))
		f, err := os.Open("/dev/input/" + ev)
		if err != nil {
			continue
		}
		go func() {
			defer f.Close()
			buf := make([]byte, eventSize)
			for {
				if _, err := f.Read(buf); err != nil {
					return
				}
				typ, code, val := binary.NativeEndian.Uint16(buf[16:]), binary.NativeEndian.Uint16(buf[18:]), int32(binary.NativeEndian.Uint32(buf[20:]))
				if typ == evKey && code == keyPower && val == 1 {
					select {
					case pressed <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return pressed
}
