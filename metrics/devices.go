package metrics

import "github.com/prometheus/client_golang/prometheus"

// registerDevices creates the device inventory collectors (issue 16).
func (m *Metrics) registerDevices(reg *prometheus.Registry) {
	m.DeviceLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_devices_lookups_total",
		Help: "Per-request device inventory lookups by result (cached, fetched, error, foreign).",
	}, []string{"result"})
	m.DeviceEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztproxy_devices_events_total",
		Help: "Device inventory changes by event (enrolled, renewed, reported, revoked, managed, imported).",
	}, []string{"event"})
	reg.MustRegister(m.DeviceLookups, m.DeviceEvents)
}

// ObserveDeviceLookup counts a per-request lookup (devices.Config.OnLookup).
func (m *Metrics) ObserveDeviceLookup(result string) { m.DeviceLookups.WithLabelValues(result).Inc() }

// ObserveDeviceEvent counts an inventory change (devices.Config.OnEvent).
func (m *Metrics) ObserveDeviceEvent(event string) { m.DeviceEvents.WithLabelValues(event).Inc() }
