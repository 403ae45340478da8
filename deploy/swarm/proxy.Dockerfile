# The load balancer of stack.yml: Debian's nginx with nginx.conf.
#   docker build -f deploy/swarm/proxy.Dockerfile -t digitserve-proxy deploy/swarm
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# Unpinned: a security update replaces the version in the archive, and a pin would stop building.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*

COPY nginx.conf /etc/nginx/nginx.conf
RUN nginx -t

# Port 8080 needs no root: nginx runs as www-data. SIGQUIT lets it finish the requests in flight.
USER 33:33
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
