package config

import (
	"strings"

	"ztproxy/awscreds"
)

// awsConfig converts the aws block; nil when no role is configured.
func (f *File) awsConfig() *awscreds.Config {
	if len(f.AWS.Roles) == 0 {
		return nil
	}
	cfg := &awscreds.Config{Region: f.AWS.Region, STSEndpoint: f.AWS.STSEndpoint, CacheSize: f.AWS.CacheSize}
	for _, r := range f.AWS.Roles {
		cfg.Roles = append(cfg.Roles, awscreds.RoleConfig{
			Name: r.Name, RoleARN: r.RoleARN, Mode: awscreds.Mode(r.Mode), Duration: r.Duration,
			SessionTags: r.SessionTags, TransitiveTagKeys: r.TransitiveTagKeys,
			SessionPolicy: r.SessionPolicy, ExternalID: r.ExternalID,
		})
	}
	return cfg
}

// checkAWS runs the STS limits check at config time (so a config that
// cannot work fails check-config, not a request at 3 a.m.) and checks that
// routes name configured roles.
func (f *File) checkAWS(c *collector) {
	if f.AWS.CacheSize != 0 {
		checkCacheBound(c, "aws.cache_size", f.AWS.CacheSize)
	}
	if cfg := f.awsConfig(); cfg != nil {
		if err := cfg.Validate(); err != nil {
			for _, line := range splitErrors(err) {
				path, msg, ok := strings.Cut(line, ": ")
				if !ok {
					path, msg = "aws", line
				}
				c.add(path, "%s", msg)
			}
		}
	}
	roles := map[string]bool{}
	for _, r := range f.AWS.Roles {
		roles[r.Name] = true
	}
	for i, r := range f.Routes {
		if r.AWS == nil {
			continue
		}
		path := indexPath("routes", i) + ".aws"
		if !roles[r.AWS.Role] {
			c.add(path+".role", "%q is not one of aws.roles", r.AWS.Role)
		}
		if r.Auth != AuthBrowser && r.Auth != AuthBearer {
			c.add(path, "AWS credentials are per user: the route needs auth browser or bearer")
		}
		if s := r.AWS.Sign; s != nil {
			if s.Service == "" {
				c.add(path+".sign.service", "required")
			}
			if s.Region == "" {
				c.add(path+".sign.region", "required")
			}
			if s.UnsignedPayload && s.Service != "s3" {
				c.add(path+".sign.unsigned_payload", "only S3 accepts UNSIGNED-PAYLOAD")
			}
			if s.MaxBufferedBody < 0 || s.MaxBufferedBody > awscreds.MaxBufferedBodyLimit {
				c.add(path+".sign.max_buffered_body", "must be between 0 (default %d) and %d bytes", awscreds.DefaultMaxBufferedBody, awscreds.MaxBufferedBodyLimit)
			}
		}
	}
}
