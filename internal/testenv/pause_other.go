//go:build !unix

package testenv

import "errors"

// SIGSTOP and SIGCONT exist only on Unix.
func (p *nodeProcess) signalStop() error { return errors.ErrUnsupported }
func (p *nodeProcess) signalCont() error { return errors.ErrUnsupported }
