# The load balancer in front of the Thumper nodes: Debian bookworm's nginx and its stream module,
# the same packages test/integration/deploy-files.test.ts runs `nginx -t` with, so the config that
# passes there is the config that runs here. Runs as the unprivileged www-data user: the ports are
# above 1024, and pid and temp files live under a prefix www-data owns.
FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends nginx libnginx-mod-stream \
  && rm -rf /var/lib/apt/lists/* \
  && install -d -o www-data -g www-data /var/cache/thumper-nginx
COPY broker/deploy/nginx.conf /etc/nginx/thumper.conf
USER www-data
WORKDIR /var/cache/thumper-nginx
EXPOSE 15674 61613
# nginx's own /healthz (it does not depend on the nodes); bash's /dev/tcp, as the image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/15674 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == *' 200 '* ]]"]
# PID 1 is the nginx master: `docker compose kill -s HUP nginx` reloads it (and re-resolves the nodes).
CMD ["nginx", "-e", "stderr", "-p", "/var/cache/thumper-nginx/", "-c", "/etc/nginx/thumper.conf", "-g", "daemon off;"]
