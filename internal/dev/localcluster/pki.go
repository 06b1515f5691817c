package localcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate and its private key, parsed and as PEM.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCA makes a self-signed certificate authority valid for ten years.
func newCA(commonName string) (*keyPair, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return issue(tmpl, nil)
}

// issue signs tmpl with ca (self-signed when ca is nil), filling in serial number and validity.
func issue(tmpl *x509.Certificate, ca *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// writeFiles writes PEM contents, private to the owner.
func writeFiles(files map[string][]byte) error {
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// frontProxyFiles are the files of the aggregation layer's PKI: a CA kube-apiserver and the extension
// servers trust for request headers, and the client certificate kube-apiserver proxies with.
type frontProxyFiles struct {
	CA, ClientCert, ClientKey string
}

// FrontProxyClientName is the common name of the front-proxy client certificate, and the only name
// --requestheader-allowed-names accepts.
const FrontProxyClientName = "front-proxy-client"

func writeFrontProxyPKI(dir string) (frontProxyFiles, error) {
	files := frontProxyFiles{
		CA:         filepath.Join(dir, "front-proxy-ca.crt"),
		ClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		ClientKey:  filepath.Join(dir, "front-proxy-client.key"),
	}
	ca, err := newCA("ebb-front-proxy-ca")
	if err != nil {
		return files, err
	}
	client, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: FrontProxyClientName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return files, err
	}
	return files, writeFiles(map[string][]byte{
		files.CA:         ca.certPEM,
		files.ClientCert: client.certPEM,
		files.ClientKey:  client.keyPEM,
	})
}

// servingFiles are kube-apiserver's serving certificate, its CA (which pods find in the kube-root-ca.crt
// ConfigMap) and the service-account token signing key.
type servingFiles struct {
	CA, SAKey, SAPub string
}

// writeServingPKI writes, into envtest's certificate directory, the files envtest would otherwise make
// itself (apiserver.crt and .key, sa-signer.key and .crt), so that the serving certificate also names the
// addresses pods reach kube-apiserver at: the node address and the kubernetes Service's cluster IP. It
// returns the CA in PEM for envtest's clients.
func writeServingPKI(certDir string, ips []net.IP) (servingFiles, []byte, error) {
	files := servingFiles{
		CA:    filepath.Join(certDir, "apiserver-ca.crt"),
		SAKey: filepath.Join(certDir, "sa-signer.key"),
		SAPub: filepath.Join(certDir, "sa-signer.crt"),
	}
	ca, err := newCA("ebb-apiserver-ca")
	if err != nil {
		return files, nil, err
	}
	serving, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...),
	}, ca)
	if err != nil {
		return files, nil, err
	}
	sa, err := newCA("ebb-service-account-signer")
	if err != nil {
		return files, nil, err
	}
	return files, ca.certPEM, writeFiles(map[string][]byte{
		files.CA:                                ca.certPEM,
		filepath.Join(certDir, "apiserver.crt"): serving.certPEM,
		filepath.Join(certDir, "apiserver.key"): serving.keyPEM,
		files.SAKey:                             sa.keyPEM,
		files.SAPub:                             sa.certPEM,
	})
}

// kubeletClientFiles are the client certificate kube-apiserver shows the kubelet (for logs, exec and
// port-forward) and the CA the kubelet checks it against.
type kubeletClientFiles struct {
	CA, Cert, Key string
}

func writeKubeletClientPKI(dir string) (kubeletClientFiles, error) {
	files := kubeletClientFiles{
		CA:   filepath.Join(dir, "kubelet-client-ca.crt"),
		Cert: filepath.Join(dir, "kubelet-client.crt"),
		Key:  filepath.Join(dir, "kubelet-client.key"),
	}
	ca, err := newCA("ebb-kubelet-client-ca")
	if err != nil {
		return files, err
	}
	client, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return files, err
	}
	return files, writeFiles(map[string][]byte{files.CA: ca.certPEM, files.Cert: client.certPEM, files.Key: client.keyPEM})
}
