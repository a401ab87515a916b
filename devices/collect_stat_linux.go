package devices

import (
	"golang.org/x/sys/unix"
)

type syscallStat struct{ major, minor uint32 }

// statRdev returns the device number of a block device node.
func statRdev(path string, st *syscallStat) error {
	var s unix.Stat_t
	if err := unix.Stat(path, &s); err != nil {
		return err
	}
	st.major, st.minor = unix.Major(s.Rdev), unix.Minor(s.Rdev)
	return nil
}
