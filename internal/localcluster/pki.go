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
	"os"
	"path/filepath"
	"time"
)

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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ebb-front-proxy-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return files, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return files, err
	}
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, err
	}
	clientTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: FrontProxyClientName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, caCert, &clientKey.PublicKey, caKey)
	if err != nil {
		return files, err
	}
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		return files, err
	}
	for path, block := range map[string]*pem.Block{
		files.CA:         {Type: "CERTIFICATE", Bytes: caDER},
		files.ClientCert: {Type: "CERTIFICATE", Bytes: clientDER},
		files.ClientKey:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return files, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return files, nil
}
