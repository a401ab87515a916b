//go:build !unix

package testenv

// lockFile is a no-op where flock is unavailable; parallel installs may then race.
func lockFile(string) (func(), error) { return func() {}, nil }
