# Sourced (not run) by the scripts that build or fetch the Kubernetes tools the tests use, from the Go module proxy:
# one place for their pinned versions. Each can be overridden from the environment.
KUBE_VERSION="${KUBE_VERSION:-1.37.2}"   # kube-apiserver, and the OpenAPI schemas the chart is checked against
ETCD_VERSION="${ETCD_VERSION:-3.7.4}"    # the etcd minor kube-apiserver 1.37 is built against (client v3.7.0)
HELM_VERSION="${HELM_VERSION:-4.3.2}"
