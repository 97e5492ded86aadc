"""What talks to the cluster: SSH to a node and the node's directory layout, haproxy's
runtime API, the Tomcat manager, HTTP probes of ``/status``."""
