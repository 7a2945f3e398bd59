package guest

import (
	"os"
	"path/filepath"
	"time"
)

// cpuRoot is where the kernel lists the vCPUs.
const cpuRoot = "/sys/devices/system/cpu"

// onlineCPUs brings up the vCPUs the host plugs in while the machine
// runs (vmd's Update): the kernel adds them offline and leaves bringing
// them up to user space, which here is process 1. Memory needs nothing:
// the kernel onlines it itself (memhp_default_state on its command
// line). It polls rather than listening for uevents: a second of delay
// does not matter to a resize, and it keeps the init small.
func onlineCPUs(every time.Duration) {
	for {
		online(filepath.Join(cpuRoot, "cpu*", "online"))
		time.Sleep(every)
	}
}

// online writes 1 to each file matching pattern that reads 0.
func online(pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 && b[0] == '0' {
			_ = os.WriteFile(f, []byte("1"), 0)
		}
	}
}
