# Redis from Debian bookworm's own packages, built without an image registry by
# scripts/build-base-images.sh and tagged redis:<major.minor>, the name docker-compose.yml uses.
# Like the official image: `redis-server` and `redis-cli` on the PATH, working directory /data,
# and protected mode off (the container network is the boundary; redis is never published).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
VOLUME ["/data"]
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
