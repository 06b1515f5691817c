package valuesync

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// ServerOptions configure a Server. The zero value of each optional field picks the default its comment
// gives.
type ServerOptions struct {
	// BindAddress is the address to listen on, such as ":8443". Required.
	BindAddress string
	// CertDir holds tls.crt and tls.key (as a kubernetes.io/tls Secret mounts them); they are reloaded
	// when they change. Default "": a self-signed certificate made at start for Hosts, whose public key
	// followers pin (Pin).
	CertDir string
	// Hosts are the names and IP addresses the self-signed certificate is made for. Default: localhost.
	Hosts []string
}

// Server serves a Handler over HTTPS behind kube-apiserver's delegated authentication (TokenReview) and
// authorization (SubjectAccessReview of get on the non-resource URL Path). It listens from NewServer on,
// so a bad or taken address fails at once, and serves from Start until its context ends. It is a
// manager.Runnable that runs on every replica: the Handler refuses while its process does not lead.
type Server struct {
	listener net.Listener
	handler  http.Handler
	tls      *tls.Config
	watcher  *certwatcher.CertWatcher // nil with a self-signed certificate
	pin      string
}

// NewServer listens on opts.BindAddress and returns a Server for h. cfg reaches kube-apiserver for the
// TokenReviews and SubjectAccessReviews; its identity needs create on both (system:auth-delegator).
func NewServer(cfg *rest.Config, h http.Handler, opts ServerOptions) (*Server, error) {
	if opts.BindAddress == "" {
		return nil, errors.New("values server: no bind address")
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	authed, err := withDelegatedAuth(cfg, httpClient, klog.Background().WithName("values-server"), mux)
	if err != nil {
		return nil, fmt.Errorf("values server: %w", err)
	}
	s := &Server{handler: authed, tls: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}}
	if opts.CertDir != "" {
		s.watcher, err = certwatcher.New(filepath.Join(opts.CertDir, "tls.crt"), filepath.Join(opts.CertDir, "tls.key"))
		if err != nil {
			return nil, fmt.Errorf("values server: certificate in %s: %w", opts.CertDir, err)
		}
		s.tls.GetCertificate = s.watcher.GetCertificate
	} else {
		hosts := opts.Hosts
		if len(hosts) == 0 {
			hosts = []string{"localhost"}
		}
		cert, err := selfSigned(hosts)
		if err != nil {
			return nil, fmt.Errorf("values server: self-signed certificate: %w", err)
		}
		s.tls.Certificates = []tls.Certificate{cert}
		s.pin = PinOf(cert.Leaf)
	}
	if s.listener, err = net.Listen("tcp", opts.BindAddress); err != nil {
		return nil, fmt.Errorf("values server: %w", err)
	}
	return s, nil
}

// Close stops listening, for a Server that will not be started.
func (s *Server) Close() error { return s.listener.Close() }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Pin is the pin of the self-signed certificate's public key ("sha256:<base64url>"), or "" when the
// certificate comes from CertDir (it may rotate; followers verify it with a CA instead).
func (s *Server) Pin() string { return s.pin }

// NeedLeaderElection makes Server run on every replica, leader or not.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends. Open long polls end with ctx.
func (s *Server) Start(ctx context.Context) error {
	if s.watcher != nil {
		go func() {
			if err := s.watcher.Start(ctx); err != nil {
				klog.FromContext(ctx).Error(err, "watching the values server's certificate")
			}
		}()
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(s.listener, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("values server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("values server: %w", err)
	}
	return nil
}

// PinOf returns the pin of a certificate's public key: "sha256:" and the base64url (unpadded) SHA-256
// of its DER SubjectPublicKeyInfo.
func PinOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// selfSigned makes an ECDSA P-256 certificate for hosts, valid from an hour ago for ten years: it lives
// as long as the process, and followers trust it by its pinned key, not by its dates or a CA.
func selfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ebb-values@" + hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
