package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Defaults for the development CA.
const (
	DefaultDevValidity    = 365 * 24 * time.Hour
	DefaultDeviceSPIFFEID = "spiffe://ztproxy.dev/device/dev-laptop"
	devClientCommonName   = "dev-laptop"
	// clockSkew backdates NotBefore so that a freshly issued certificate is
	// accepted by a peer whose clock runs slightly behind.
	clockSkew = 5 * time.Minute
)

// DefaultDevHosts are the server names the development certificate covers
// when DevOptions.Hosts is empty.
var DefaultDevHosts = []string{"localhost", "127.0.0.1", "::1"}

// DevOptions configures WriteDev.
type DevOptions struct {
	// Out is the directory the files are written to; it is created 0700.
	Out string
	// Hosts are the DNS names and IP addresses of the server certificate;
	// the default is DefaultDevHosts.
	Hosts []string
	// DeviceSPIFFEID is the URI SAN of the client certificate; the default
	// is DefaultDeviceSPIFFEID.
	DeviceSPIFFEID string
	// Validity is the lifetime of every certificate; the default is
	// DefaultDevValidity.
	Validity time.Duration
	// Force allows replacing an existing CA in Out. Without it WriteDev
	// refuses, because replacing the CA invalidates every certificate it
	// issued.
	Force bool
}

// ErrDevCAExists reports that WriteDev found a CA in DevOptions.Out and
// DevOptions.Force was not set. Callers name their own way to force it.
var ErrDevCAExists = errors.New("a development CA already exists there; replacing it invalidates every certificate it issued")

// DevFiles are the paths WriteDev wrote.
type DevFiles struct {
	CA, CAKey, ServerCert, ServerKey, ClientCert, ClientKey string
}

// WriteDev creates a development CA with a server and a client certificate
// signed by it, all ECDSA P-256, and writes them as PEM to opts.Out. Keys
// are written 0600. It MUST NOT be used for production traffic: the CA key
// lies next to the certificates it signs.
func WriteDev(opts DevOptions) (DevFiles, error) {
	if err := opts.checkAndSetDefaults(); err != nil {
		return DevFiles{}, err
	}
	files := DevFiles{
		CA:         filepath.Join(opts.Out, "ca.pem"),
		CAKey:      filepath.Join(opts.Out, "ca-key.pem"),
		ServerCert: filepath.Join(opts.Out, "server.pem"),
		ServerKey:  filepath.Join(opts.Out, "server-key.pem"),
		ClientCert: filepath.Join(opts.Out, "client.pem"),
		ClientKey:  filepath.Join(opts.Out, "client-key.pem"),
	}
	if !opts.Force {
		for _, p := range []string{files.CA, files.CAKey} {
			if _, err := os.Lstat(p); err == nil {
				return DevFiles{}, fmt.Errorf("dev CA: %s: %w", p, ErrDevCAExists)
			}
		}
	}
	if err := os.MkdirAll(opts.Out, 0o700); err != nil {
		return DevFiles{}, fmt.Errorf("dev CA: %w", err)
	}
	now := time.Now()
	ca, caKey, err := newDevCA(now, opts.Validity, opts.Hosts)
	if err != nil {
		return DevFiles{}, err
	}
	server, serverKey, err := issueLeaf(ca, caKey, serverTemplate(opts.Hosts), now, opts.Validity)
	if err != nil {
		return DevFiles{}, fmt.Errorf("dev CA: server certificate: %w", err)
	}
	spiffe, _ := url.Parse(opts.DeviceSPIFFEID) // validated in checkAndSetDefaults
	client, clientKey, err := issueLeaf(ca, caKey, clientTemplate(spiffe, devClientCommonName), now, opts.Validity)
	if err != nil {
		return DevFiles{}, fmt.Errorf("dev CA: client certificate: %w", err)
	}
	// The CA goes last: if an earlier write fails, a rerun is not blocked
	// by a CA whose leaves were never written.
	writes := []struct {
		path string
		der  []byte
		key  crypto.Signer
	}{
		{files.ServerCert, server, nil}, {files.ServerKey, nil, serverKey},
		{files.ClientCert, client, nil}, {files.ClientKey, nil, clientKey},
		{files.CAKey, nil, caKey}, {files.CA, ca.Raw, nil},
	}
	for _, w := range writes {
		if w.key != nil {
			err = writeKey(w.path, w.key)
		} else {
			err = writeCert(w.path, w.der)
		}
		if err != nil {
			return DevFiles{}, fmt.Errorf("dev CA: %w", err)
		}
	}
	return files, nil
}

func (o *DevOptions) checkAndSetDefaults() error {
	var errs []error
	if o.Out == "" {
		errs = append(errs, errors.New("dev CA: output directory is required"))
	}
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultDevHosts
	}
	for i, h := range o.Hosts {
		if h == "" {
			errs = append(errs, fmt.Errorf("dev CA: hosts[%d]: empty", i))
		}
	}
	if o.DeviceSPIFFEID == "" {
		o.DeviceSPIFFEID = DefaultDeviceSPIFFEID
	}
	if err := checkSPIFFEID(o.DeviceSPIFFEID); err != nil {
		errs = append(errs, fmt.Errorf("dev CA: device SPIFFE id: %w", err))
	}
	switch {
	case o.Validity < 0:
		errs = append(errs, fmt.Errorf("dev CA: validity %v must not be negative", o.Validity))
	case o.Validity == 0:
		o.Validity = DefaultDevValidity
	}
	return errors.Join(errs...)
}

// checkSPIFFEID rejects ids that DeviceFromState would not accept.
func checkSPIFFEID(id string) error {
	u, err := url.Parse(id)
	if err != nil {
		return err
	}
	if !validSPIFFEID(u) {
		return fmt.Errorf("%q is not a spiffe://<trust-domain>/<path> URI", id)
	}
	return nil
}

// IssueClient issues a client certificate signed by an existing CA (for
// example the dev CA) and writes it and its new key to outCert and outKey.
// spiffeID may be empty for a certificate identified by commonName alone.
// The certificate never outlives the CA.
func IssueClient(caCertFile, caKeyFile, outCert, outKey, spiffeID, commonName string, validity time.Duration) error {
	var spiffe *url.URL
	if spiffeID != "" {
		if err := checkSPIFFEID(spiffeID); err != nil {
			return fmt.Errorf("issue client: %w", err)
		}
		spiffe, _ = url.Parse(spiffeID)
	}
	if validity <= 0 {
		validity = DefaultDevValidity
	}
	ca, caKey, err := LoadCA(caCertFile, caKeyFile)
	if err != nil {
		return fmt.Errorf("issue client: %w", err)
	}
	der, key, err := issueLeaf(ca, caKey, clientTemplate(spiffe, commonName), time.Now(), validity)
	if err != nil {
		return fmt.Errorf("issue client: %w", err)
	}
	if err := writeKey(outKey, key); err != nil {
		return fmt.Errorf("issue client: %w", err)
	}
	if err := writeCert(outCert, der); err != nil {
		return fmt.Errorf("issue client: %w", err)
	}
	return nil
}

// LoadCA reads a CA certificate and its key (PEM) and checks that the
// certificate is a CA and the key belongs to it. Errors name the file
// and never contain key bytes.
func LoadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := readFile(certFile, certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := readFile(keyFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	certs, err := parseCertificates(certFile, certPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := parsePrivateKey(keyFile, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s: certificate is not a CA", certFile)
	}
	if !publicKeysEqual(ca, key) {
		return nil, nil, fmt.Errorf("%s and %s: key does not match certificate", certFile, keyFile)
	}
	return ca, key, nil
}

// The CA is name-constrained to the server certificate's hosts: people
// are told to trust it in their browsers (ztproxy certs trust), and its key
// lies in a plain file, so a copy of that key must not be able to
// impersonate any other site to them (issue 15.11). Client certificates
// (a SPIFFE URI, a common name) are not constrained.
func newDevCA(now time.Time, validity time.Duration, hosts []string) (*x509.Certificate, crypto.Signer, error) {
	ca, key, err := newCA(pkix.Name{CommonName: "ztproxy development CA", Organization: []string{"ztproxy dev"}}, now, validity, hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("dev CA: %w", err)
	}
	return ca, key, nil
}

// newCA creates a self-signed ECDSA P-256 CA that may sign leaves only
// (path length zero), name-constrained to hosts when there are any.
func newCA(subject pkix.Name, now time.Time, validity time.Duration, hosts []string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	constrainToHosts(template, hosts)
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// constrainToHosts limits the CA to the DNS names (and their subdomains)
// and the exact IP addresses of hosts.
func constrainToHosts(ca *x509.Certificate, hosts []string) {
	if len(hosts) == 0 {
		return
	}
	ca.PermittedDNSDomainsCritical = true
	for _, h := range hosts {
		ip := net.ParseIP(h)
		switch {
		case ip == nil:
			ca.PermittedDNSDomains = append(ca.PermittedDNSDomains, h)
		case ip.To4() != nil:
			ca.PermittedIPRanges = append(ca.PermittedIPRanges, &net.IPNet{IP: ip.To4(), Mask: net.CIDRMask(32, 32)})
		default:
			ca.PermittedIPRanges = append(ca.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)})
		}
	}
}

func serverTemplate(hosts []string) *x509.Certificate {
	t := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	return t
}

func clientTemplate(spiffe *url.URL, commonName string) *x509.Certificate {
	t := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if spiffe != nil {
		t.URIs = []*url.URL{spiffe}
	}
	return t
}

// issueLeaf signs template with the CA using a new P-256 key. The validity
// is capped at the CA's own expiry.
func issueLeaf(ca *x509.Certificate, caKey crypto.Signer, template *x509.Certificate, now time.Time, validity time.Duration) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if template.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, err
	}
	template.NotBefore = now.Add(-clockSkew)
	template.NotAfter = now.Add(validity)
	if template.NotAfter.After(ca.NotAfter) {
		template.NotAfter = ca.NotAfter
	}
	template.KeyUsage = x509.KeyUsageDigitalSignature
	template.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, template, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return der, key, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial, nil
}

func writeCert(path string, der []byte) error {
	return WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("%s: encode key: %w", path, err)
	}
	return WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteFileAtomic writes data to a temporary file with perm and renames it
// over path, so a reloading proxy never reads a half-written file and a key
// is never readable by others, even briefly.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return nil
}
