# PostgreSQL from Debian bookworm's own packages, built without an image registry by
# scripts/build-base-images.sh and tagged postgres:<major>, the name docker-compose.yml uses.
# It behaves like the official image where the compose file relies on it: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB create the cluster on first start (postgres-entrypoint.sh),
# data in /var/lib/postgresql/data, pg_isready on the PATH, a world-writable socket directory
# /var/run/postgresql (mode 3777: a tmpfs mounted there under a read-only root inherits it).
# It runs as the `postgres` user.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG PG_MAJOR
# No "main" cluster: the entrypoint creates the only one, in PGDATA.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data \
 && chmod 3777 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER postgres
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
