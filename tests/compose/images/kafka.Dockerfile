# A stand-in for the official apache/kafka:<version>, which cannot be pulled here: Debian's JRE with the broker
# jars kafka/pom.xml resolves, the /opt/kafka/bin scripts docker-compose.yml calls, and a start that reads the
# KAFKA_* variables (kafka/run). It runs as a non-root user, as the official image does.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --create-home appuser \
    && mkdir -p /opt/kafka/config /var/lib/kafka/data \
    && chown appuser /opt/kafka/config /var/lib/kafka/data
COPY jars/ /opt/kafka/libs/
COPY bin/ /opt/kafka/bin/
COPY log4j2.xml /opt/kafka/config/log4j2.xml
COPY run /etc/kafka/docker/run
ARG VERSION
LABEL org.gozon.stand-in="apache/kafka:${VERSION}"
USER appuser
EXPOSE 9092
CMD ["/etc/kafka/docker/run"]
