#!/bin/sh
# The distribution's scripts are not in the Maven artifacts: this one runs a class on the broker's jars.
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} ${KAFKA_OPTS:-} -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml \
    -cp '/opt/kafka/libs/*' "$@"
