package config

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"ztproxy/identity"
	"ztproxy/store"
)

// writeTinyMMDB writes a two-network GeoIP2-City-shaped database.
func writeTinyMMDB(t *testing.T) string {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	add := func(cidr string, lat, lon float64) {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, mmdbtype.Map{"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon)}}); err != nil {
			t.Fatal(err)
		}
	}
	add("81.0.0.0/8", 52.52, 13.40)     // Berlin
	add("1.128.0.0/11", -33.87, 151.21) // Sydney
	path := filepath.Join(t.TempDir(), "tiny.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestImpossibleTravelWithMMDB: a generated MaxMind database, the embedded
// store and the risk engine: Berlin then Sydney a minute later is
// impossible travel.
func TestImpossibleTravelWithMMDB(t *testing.T) {
	path := writeTinyMMDB(t)
	geo, err := openGeoIP(path)
	if err != nil {
		t.Fatal(err)
	}
	if lat, lon, ok := geo.Lookup(netip.MustParseAddr("81.2.3.4")); !ok || lat != 52.52 || lon != 13.40 {
		t.Fatalf("Berlin lookup: %v %v %v", lat, lon, ok)
	}
	if _, _, ok := geo.Lookup(netip.MustParseAddr("192.0.2.1")); ok {
		t.Fatal("an address outside the database was located")
	}
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f := DefaultFile()
	f.Risk.GeoIPDatabase = path
	eng, err := NewRiskEngine(&f, st, RiskHooks{Now: func() time.Time { return clock }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	rc := identity.RequestContext{Principal: identity.Principal{Kind: identity.KindUser, ID: "https://idp#alice"},
		ClientIP: netip.MustParseAddr("81.2.3.4"), UserAgent: "Mozilla/5.0 (Macintosh) Safari/605.1", Time: clock}
	if _, err := eng.Score(context.Background(), &rc); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	rc.ClientIP, rc.Time = netip.MustParseAddr("1.130.0.9"), clock
	risk, err := eng.Score(context.Background(), &rc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(risk.Reasons, func(r identity.RiskReason) bool { return r.Code == "impossible_travel" }) {
		t.Fatalf("Berlin → Sydney in a minute not flagged: %+v", risk)
	}
}
