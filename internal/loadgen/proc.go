package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. Linux fixes it at 100
// for user space (USER_HZ), whatever the kernel's own tick rate.
const userHZ = 100

// cpuTime returns the user+system CPU time process pid has used, all its
// threads together (proc(5), fields 14 and 15 of /proc/PID/stat).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count
	// fields from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// memory returns the resident set size now and its high-water mark since the
// process started (VmRSS and VmHWM of /proc/PID/status), in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, nil
}

// ProcessStats are what a run measured of one local process.
type ProcessStats struct {
	PID int `json:"pid"`
	// CPUSeconds is the user+system CPU time used during the measured window.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUMicrosPerOp is CPUSeconds spread over the operations of the window.
	CPUMicrosPerOp float64 `json:"cpu_us_per_op"`
	// Cores is CPUSeconds divided by the window's length.
	Cores float64 `json:"cores"`
	// PeakRSS is the largest resident set seen during the window (sampled every
	// 50 ms); HWM is the kernel's high-water mark since the process started.
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
	HWM     int64 `json:"hwm_bytes,omitempty"`
	// StartRSS is the resident set when the bench started, before its setup;
	// WindowStartRSS when the measured window began (after setup and warm-up,
	// whose sign-ins may have left the heap large).
	StartRSS       int64 `json:"start_rss_bytes,omitempty"`
	WindowStartRSS int64 `json:"window_start_rss_bytes,omitempty"`
}

// watcher follows one process's CPU time and resident set during a window.
type watcher struct {
	pid      int
	cpu0     time.Duration
	startRSS int64
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex
	peak     int64
	rss0     int64
}

func newWatcher(pid int, startRSS int64) (*watcher, error) {
	cpu, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	w := &watcher{pid: pid, cpu0: cpu, startRSS: startRSS, stop: make(chan struct{})}
	if rss, _, err := memory(pid); err == nil {
		w.peak, w.rss0 = rss, rss
	}
	w.done.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				if rss, _, err := memory(pid); err == nil {
					w.mu.Lock()
					w.peak = max(w.peak, rss)
					w.mu.Unlock()
				}
			}
		}
	})
	return w, nil
}

// finish stops sampling and returns the window's figures.
func (w *watcher) finish(window time.Duration, ops int64) *ProcessStats {
	close(w.stop)
	w.done.Wait()
	st := &ProcessStats{PID: w.pid, PeakRSS: w.peak, StartRSS: w.startRSS, WindowStartRSS: w.rss0}
	if cpu, err := cpuTime(w.pid); err == nil {
		used := cpu - w.cpu0
		st.CPUSeconds = used.Seconds()
		if ops > 0 {
			st.CPUMicrosPerOp = float64(used.Microseconds()) / float64(ops)
		}
		if window > 0 {
			st.Cores = used.Seconds() / window.Seconds()
		}
	}
	if rss, hwm, err := memory(w.pid); err == nil {
		st.HWM = hwm
		st.PeakRSS = max(st.PeakRSS, rss)
	}
	return st
}
