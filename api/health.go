package api

// AggregatedStatus folds checks into one state the way Consul does: any
// critical check makes it critical, else any warning makes it warning,
// else it is passing — an instance with no checks included. A status this
// client does not know counts as critical, so that it is never taken for
// healthy.
func AggregatedStatus(checks []*HealthCheck) string {
	status := HealthPassing
	for _, c := range checks {
		switch c.Status {
		case HealthPassing:
		case HealthWarning:
			status = HealthWarning
		default:
			return HealthCritical
		}
	}
	return status
}
