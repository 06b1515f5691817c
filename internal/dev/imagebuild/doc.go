// Package imagebuild builds ebb's container images without a Docker daemon or a registry: one layer that
// holds one static Linux binary, a passwd and group file for a non-root user and, optionally, the
// machine's CA bundle, on no base image.
//
// The contract:
//   - Build reads every file it needs when it is called; the image it returns depends on nothing on disk
//     afterwards, so the binary may be removed.
//   - The output is reproducible: the same Spec and the same file contents give the same image digest.
//     Every timestamp (the config's created time, each file's modification time) is Spec.Created, the Unix
//     epoch when unset; files are written in a fixed order with fixed owners.
//   - WriteTarball writes a docker-archive tarball (the format of `docker save`), which `docker load`,
//     `ctr -n k8s.io images import` and `kind load image-archive` accept, and replaces the file atomically.
//   - Push sends the image to a registry with the credentials of the default keychain (~/.docker/config.json
//     and its helpers).
//   - BuildGo builds a static binary (CGO_ENABLED=0, GOOS=linux, -trimpath) with the go command on PATH.
//
// Project lists this project's images (ebb, the pause image for containerd's sandbox_image, the example
// consumer) so that hack/image, the Makefile and the tests that run a real node build them the same way.
//
// This is development tooling: ebb's serving packages do not import it.
package imagebuild
