"""Between lbsim and real balancers: a scenario's balancer as an HAProxy or NGINX config."""
