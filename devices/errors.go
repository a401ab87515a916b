package devices

import "errors"

// Errors callers act on (the portal turns them into answers).
var (
	// ErrNotFound: no such device (or not the caller's).
	ErrNotFound = errors.New("devices: no such device")
	// ErrExists: a create found the id taken.
	ErrExists = errors.New("devices: device already exists")
	// ErrConflict: the record changed between read and write.
	ErrConflict = errors.New("devices: the device record changed concurrently")
	// ErrNotEnrolled: the certificate is not an enrolled device's.
	ErrNotEnrolled = errors.New("devices: the certificate is not an enrolled device's")
	// ErrRevoked: the device was revoked, removed or reported lost.
	ErrRevoked = errors.New("devices: the device has been revoked")
	// ErrNotCurrent: only the device's current certificate may renew.
	ErrNotCurrent = errors.New("devices: only the device's current certificate may renew it")
	// ErrTooManyDevices: the owner has the most active devices allowed.
	ErrTooManyDevices = errors.New("devices: too many devices")
)

// InputError is bad input from a device, user or operator: a request that
// changes nothing and whose message says what to fix.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return "devices: " + e.Field + ": " + e.Msg }
