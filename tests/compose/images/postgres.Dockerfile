# A stand-in for the official postgres:<major>.<minor>, which cannot be pulled here: Debian's PostgreSQL of that
# major version behind an entrypoint that honours what docker-compose.yml uses of the official one (POSTGRES_*,
# /docker-entrypoint-initdb.d, PGDATA, a `postgres ...` command, pg_isready on PATH).
ARG BASE
FROM ${BASE}
ARG MAJOR
# Debian's package would create and start a cluster of its own; the entrypoint makes the one in PGDATA instead.
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold postgresql-${MAJOR} \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown postgres:postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/${MAJOR}/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
LABEL org.gozon.stand-in="postgres:${MAJOR}"
ENTRYPOINT ["docker-entrypoint.sh"]
# As the official image: SIGINT is PostgreSQL's fast shutdown.
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
