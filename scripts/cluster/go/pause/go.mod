// The pause program of the cluster's sandbox image: holds a pod's namespaces open, reaps
// zombies (it is PID 1 when the pod shares its process namespace) and exits on SIGINT/SIGTERM.
module conveyor.invalid/cluster/pause

go 1.24
