package riskengine

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ztproxy/identity"
)

// TestSignals checks each signal in isolation and in combination against
// alice's known profile, with default weights and a fixed clock.
func TestSignals(t *testing.T) {
	tests := []struct {
		name      string
		store     func(*fakeStore)
		before    func(*Engine)
		req       func(*identity.RequestContext)
		want      []string
		wantScore int
		wantLevel identity.RiskLevel
	}{
		{name: "matches profile", wantLevel: identity.RiskLow},
		{
			name:      "new network",
			req:       func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("198.51.100.7") },
			want:      []string{ReasonNewNetwork},
			wantScore: 25, wantLevel: identity.RiskLow,
		},
		{
			name:      "same /24 is not new",
			req:       func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("192.0.2.200") },
			wantLevel: identity.RiskLow,
		},
		{
			name: "network seen outside the window is new",
			store: func(s *fakeStore) {
				p := s.profiles[testUser]
				p.Networks["192.0.2.0/24"] = testNow.Add(-31 * 24 * time.Hour).Unix()
				s.profiles[testUser] = p
			},
			want: []string{ReasonNewNetwork}, wantScore: 25, wantLevel: identity.RiskLow,
		},
		{
			name:      "new user agent family",
			req:       func(rc *identity.RequestContext) { rc.UserAgent = firefoxWin },
			want:      []string{ReasonNewUserAgent},
			wantScore: 10, wantLevel: identity.RiskLow,
		},
		{
			name: "new browser version is not new",
			req: func(rc *identity.RequestContext) {
				rc.UserAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
			},
			wantLevel: identity.RiskLow,
		},
		{
			name:      "new device",
			req:       func(rc *identity.RequestContext) { rc.Device.ID = "dev-2" },
			want:      []string{ReasonNewDevice},
			wantScore: 20, wantLevel: identity.RiskLow,
		},
		// Issue 16: what the device inventory says about the certificate.
		{
			name: "device enrolled to someone else",
			req: func(rc *identity.RequestContext) {
				rc.Device.Checked, rc.Device.Enrolled, rc.Device.Owner = true, true, "https://idp.example.com#mallory"
				rc.Device.PostureTime = testNow
			},
			want: []string{ReasonDeviceOtherOwner}, wantScore: 40, wantLevel: identity.RiskMedium,
		},
		{
			name: "own device with stale posture",
			req: func(rc *identity.RequestContext) {
				rc.Device.Checked, rc.Device.Enrolled, rc.Device.Owner, rc.Device.PostureStale = true, true, rc.Principal.ID, true
			},
			want: []string{ReasonDevicePostureStale}, wantScore: 15, wantLevel: identity.RiskLow,
		},
		{
			name: "own device, fresh posture",
			req: func(rc *identity.RequestContext) {
				rc.Device.Checked, rc.Device.Enrolled, rc.Device.Owner, rc.Device.PostureTime = true, true, rc.Principal.ID, testNow
			},
			wantLevel: identity.RiskLow,
		},
		{
			name: "certificate the inventory does not know",
			req:  func(rc *identity.RequestContext) { rc.Device.Checked = true },
			want: []string{ReasonDeviceUnenrolled}, wantScore: 10, wantLevel: identity.RiskLow,
		},
		{
			name:      "no device is not a new device",
			req:       func(rc *identity.RequestContext) { rc.Device = identity.Device{} },
			wantLevel: identity.RiskLow,
		},
		{
			name:      "unusual hour",
			req:       func(rc *identity.RequestContext) { rc.Time = time.Date(2026, time.March, 1, 3, 0, 0, 0, time.UTC) },
			want:      []string{ReasonUnusualHour},
			wantScore: 10, wantLevel: identity.RiskLow,
		},
		{
			name: "unusual hour needs history",
			store: func(s *fakeStore) {
				p := s.profiles[testUser]
				p.RequestCount = 10
				s.profiles[testUser] = p
			},
			req:       func(rc *identity.RequestContext) { rc.Time = time.Date(2026, time.March, 1, 3, 0, 0, 0, time.UTC) },
			wantLevel: identity.RiskLow,
		},
		{
			name: "failed-auth burst",
			before: func(e *Engine) {
				for range 5 {
					e.RecordFailedAuth(testUser)
				}
			},
			want: []string{ReasonFailedAuth}, wantScore: 30, wantLevel: identity.RiskMedium,
		},
		{
			name: "four failed auths are no burst",
			before: func(e *Engine) {
				for range 4 {
					e.RecordFailedAuth(testUser)
				}
			},
			wantLevel: identity.RiskLow,
		},
		{
			name: "impossible travel",
			store: func(s *fakeStore) {
				p := s.profiles[testUser]
				p.Networks["203.0.113.0/24"] = testNow.Unix()
				s.profiles[testUser] = p
			},
			req:       func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("203.0.113.5") },
			want:      []string{ReasonImpossibleTravel},
			wantScore: 60, wantLevel: identity.RiskMedium,
		},
		{
			name:      "short trip is possible",
			req:       func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("198.51.100.7") },
			want:      []string{ReasonNewNetwork},
			wantScore: 25, wantLevel: identity.RiskLow,
		},
		{
			name:  "watch flag",
			store: func(s *fakeStore) { s.flags[testUser] = Flag{UserID: testUser, Level: FlagWatch} },
			want:  []string{ReasonFlagWatch}, wantScore: 40, wantLevel: identity.RiskMedium,
		},
		{
			name:  "compromised flag",
			store: func(s *fakeStore) { s.flags[testUser] = Flag{UserID: testUser, Level: FlagCompromised} },
			want:  []string{ReasonFlagCompromised}, wantScore: 100, wantLevel: identity.RiskHigh,
		},
		{
			name: "expired flag",
			store: func(s *fakeStore) {
				s.flags[testUser] = Flag{UserID: testUser, Level: FlagCompromised, ExpiresAt: testNow.Add(-time.Second)}
			},
			wantLevel: identity.RiskLow,
		},
		{
			name: "new network, agent and device",
			req: func(rc *identity.RequestContext) {
				rc.ClientIP = netip.MustParseAddr("198.51.100.7")
				rc.UserAgent = firefoxWin
				rc.Device.ID = "dev-2"
			},
			want:      []string{ReasonNewNetwork, ReasonNewDevice, ReasonNewUserAgent},
			wantScore: 55, wantLevel: identity.RiskMedium,
		},
		{
			name:  "everything at once is capped at 100",
			store: func(s *fakeStore) { s.flags[testUser] = Flag{UserID: testUser, Level: FlagCompromised} },
			req: func(rc *identity.RequestContext) {
				rc.ClientIP = netip.MustParseAddr("203.0.113.5")
				rc.UserAgent = firefoxWin
			},
			want:      []string{ReasonFlagCompromised, ReasonImpossibleTravel, ReasonNewNetwork, ReasonNewUserAgent},
			wantScore: 100, wantLevel: identity.RiskHigh,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.profiles[testUser] = knownProfile(testNow)
			if tt.store != nil {
				tt.store(st)
			}
			e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
			if tt.before != nil {
				tt.before(e)
			}
			rc := baseRequest(testNow)
			if tt.req != nil {
				tt.req(rc)
			}
			got, err := e.Score(context.Background(), rc)
			if err != nil {
				t.Fatalf("Score: %v", err)
			}
			if diff := cmp.Diff(tt.want, codes(got)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if got.Score != tt.wantScore || got.Level != tt.wantLevel {
				t.Errorf("got score %d level %s, want %d %s", got.Score, got.Level, tt.wantScore, tt.wantLevel)
			}
			sum := 0
			for _, r := range got.Reasons {
				sum += r.Points
			}
			if min(sum, 100) != got.Score {
				t.Errorf("reasons add up to %d, score is %d", sum, got.Score)
			}
		})
	}
}

// TestVelocity sends a burst within one minute: the floor (60/min) is
// crossed by the 61st request.
func TestVelocity(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	for i := 1; i <= 61; i++ {
		got, err := e.Score(context.Background(), baseRequest(testNow.Add(time.Duration(i)*100*time.Millisecond)))
		if err != nil {
			t.Fatal(err)
		}
		if fired := slices.Contains(codes(got), ReasonVelocity); fired != (i == 61) {
			t.Fatalf("request %d: velocity fired = %v", i, fired)
		}
	}
	// The next minute starts over.
	got, _ := e.Score(context.Background(), baseRequest(testNow.Add(time.Minute)))
	if slices.Contains(codes(got), ReasonVelocity) {
		t.Errorf("velocity still fires in the next minute: %v", got)
	}
}

// TestVelocityFollowsNorm: a user who normally makes 100 requests a minute
// is flagged above 5 × 100, not at the floor.
func TestVelocityFollowsNorm(t *testing.T) {
	var v velocity
	at := testNow
	for minute := range 10 {
		for i := range 100 {
			if v.hit(at.Add(time.Duration(minute)*time.Minute+time.Duration(i)*time.Millisecond), 5, 60) && minute > 0 {
				t.Fatalf("minute %d request %d flagged at the user's norm", minute, i)
			}
		}
	}
	burst := at.Add(20 * time.Minute)
	fired := 0
	for i := range 600 {
		if v.hit(burst.Add(time.Duration(i)*time.Millisecond), 5, 60) {
			fired++
		}
	}
	if fired == 0 || fired > 200 {
		t.Errorf("600 requests at a norm near 100/min: %d flagged, want the ones above about 500", fired)
	}
}

// TestFailedAuthWindow: failures older than the window do not count.
func TestFailedAuthWindow(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	for range 5 {
		e.RecordFailedAuth(testUser)
	}
	clock.Advance(6 * time.Minute)
	got, err := e.Score(context.Background(), baseRequest(clock.Now()))
	if err != nil || slices.Contains(codes(got), ReasonFailedAuth) {
		t.Errorf("Score = %v, %v; want no failed_auth after the window", got, err)
	}
}

// TestNewUser: a user without a profile gets UnknownUserScore, and stays
// unknown until a request may teach the profile.
func TestNewUser(t *testing.T) {
	st := newFakeStore()
	clock := &fakeClock{t: testNow}
	e := newTestEngine(t, st, clock, nil)
	want := identity.Risk{Score: 40, Level: identity.RiskMedium, Reasons: []identity.RiskReason{{Code: ReasonNewUser, Points: 40}}}
	for i := range 2 {
		got, err := e.Score(context.Background(), baseRequest(testNow))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("request %d (-want +got):\n%s", i, diff)
		}
	}
	// The user steps up with MFA: that request teaches the profile.
	rc := baseRequest(testNow)
	rc.Principal.AMR, rc.Principal.AuthTime = []string{"pwd", "otp"}, testNow.Add(-time.Minute)
	if _, err := e.Score(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	got, err := e.Score(context.Background(), baseRequest(testNow))
	if err != nil || got.Score != 0 || got.Level != identity.RiskLow {
		t.Errorf("after MFA step-up: %+v, %v; want score 0, low", got, err)
	}
}

// TestLearning: low-risk requests teach the profile; medium ones only with
// a fresh MFA; high ones never.
func TestLearning(t *testing.T) {
	newNetwork := func(rc *identity.RequestContext) { rc.ClientIP = netip.MustParseAddr("198.51.100.7") }
	mediumRequest := func(rc *identity.RequestContext) { newNetwork(rc); rc.UserAgent = firefoxWin } // 40 points
	tests := []struct {
		name      string
		flag      string
		first     func(*identity.RequestContext)
		wantLearn bool
	}{
		{"low risk learns", "", newNetwork, true},
		{"medium without MFA does not learn", "", mediumRequest, false},
		{"medium with stale MFA does not learn", "", func(rc *identity.RequestContext) {
			mediumRequest(rc)
			rc.Principal.AMR, rc.Principal.AuthTime = []string{"mfa"}, testNow.Add(-time.Hour)
		}, false},
		{"medium with fresh MFA learns", "", func(rc *identity.RequestContext) {
			mediumRequest(rc)
			rc.Principal.AMR, rc.Principal.AuthTime = []string{"mfa"}, testNow.Add(-time.Minute)
		}, true},
		{"high never learns", FlagCompromised, func(rc *identity.RequestContext) {
			newNetwork(rc)
			rc.Principal.AMR, rc.Principal.AuthTime = []string{"mfa"}, testNow
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.profiles[testUser] = knownProfile(testNow)
			if tt.flag != "" {
				st.flags[testUser] = Flag{UserID: testUser, Level: tt.flag}
			}
			e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
			rc := baseRequest(testNow)
			tt.first(rc)
			if _, err := e.Score(context.Background(), rc); err != nil {
				t.Fatal(err)
			}
			again := baseRequest(testNow)
			newNetwork(again)
			got, _ := e.Score(context.Background(), again)
			if learned := !slices.Contains(codes(got), ReasonNewNetwork); learned != tt.wantLearn {
				t.Errorf("network learned = %v, want %v (second risk %+v)", learned, tt.wantLearn, got)
			}
		})
	}
}

// TestThresholds maps scores to levels with custom thresholds.
func TestThresholds(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) { c.Thresholds = Thresholds{Medium: 20, High: 50} })
	for _, tt := range []struct {
		score int
		want  identity.RiskLevel
	}{{0, identity.RiskLow}, {19, identity.RiskLow}, {20, identity.RiskMedium}, {49, identity.RiskMedium}, {50, identity.RiskHigh}, {100, identity.RiskHigh}} {
		if got := e.scorer.level(tt.score); got != tt.want {
			t.Errorf("level(%d) = %s, want %s", tt.score, got, tt.want)
		}
	}
	rc := baseRequest(testNow)
	rc.ClientIP = netip.MustParseAddr("198.51.100.7")
	rc.UserAgent = firefoxWin
	rc.Device.ID = "dev-2"
	got, err := e.Score(context.Background(), rc)
	if err != nil || got.Score != 55 || got.Level != identity.RiskHigh {
		t.Errorf("Score = %+v, %v; want 55 high", got, err)
	}
}

// TestWeights: zero takes the default, negative disables a signal.
func TestWeights(t *testing.T) {
	st := newFakeStore()
	st.profiles[testUser] = knownProfile(testNow)
	e := newTestEngine(t, st, &fakeClock{t: testNow}, func(c *Config) {
		c.Weights = Weights{NewNetwork: 50, NewUserAgent: -1}
	})
	rc := baseRequest(testNow)
	rc.ClientIP = netip.MustParseAddr("198.51.100.7")
	rc.UserAgent = firefoxWin
	rc.Device.ID = "dev-2"
	got, _ := e.Score(context.Background(), rc)
	want := []identity.RiskReason{{Code: ReasonNewNetwork, Points: 50}, {Code: ReasonNewDevice, Points: 20}}
	if diff := cmp.Diff(want, got.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

// TestAnonymous: nobody to profile, neutral risk, no store call.
func TestAnonymous(t *testing.T) {
	st := newFakeStore()
	e := newTestEngine(t, st, &fakeClock{t: testNow}, nil)
	rc := baseRequest(testNow)
	rc.Principal = identity.Anonymous
	got, err := e.Score(context.Background(), rc)
	if err != nil || got.Level != identity.RiskLow || st.getProfileCalls.Load() != 0 {
		t.Errorf("Score = %+v, %v, %d store reads", got, err, st.getProfileCalls.Load())
	}
	rc.Principal = identity.Principal{Kind: identity.KindUser}
	if got, err := e.Score(context.Background(), rc); err == nil || got.Level == "" {
		t.Errorf("principal without id: %+v, %v; want an error with a level", got, err)
	}
}
