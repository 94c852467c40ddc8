# HarborMQ container image. Two stages, both on debian:12:
#   build:   the project's own scripts install the Debian packages and build the .deb (make deb)
#   runtime: that .deb installed with apt, which pulls exactly the libraries dpkg-shlibdeps named
# docker build -t harbormq .
# docker run -p 1883:1883 -v harbormq-data:/var/lib/harbormq harbormq
FROM debian:12 AS build
WORKDIR /src
# Dependencies first, so that a source change does not reinstall them.
COPY deps/debian-packages.txt deps/
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make deb

FROM debian:12
COPY --from=build /src/build/harbormq_*.deb /tmp/
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/harbormq_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/harbormq_*.deb \
 && install -d -o harbormq -g harbormq -m 0750 /var/lib/harbormq \
 && install -d -o harbormq -g harbormq -m 0755 /run/harbormq
# The packaged /etc/harbormq/harbormq.conf listens on 127.0.0.1 only, which inside a container
# is unreachable from outside it: the image listens on every address. Override any key the
# same way: docker run -e HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW=100 ...
ENV HARBORMQ_LISTENERS__TCP__BIND=0.0.0.0:1883
USER harbormq
WORKDIR /var/lib/harbormq
VOLUME /var/lib/harbormq
EXPOSE 1883
# SIGTERM (docker stop) shuts down cleanly: clients are disconnected, the store is drained.
# Give it time with docker stop -t if the store is large.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/harbormq"]
CMD ["start", "--conf", "/etc/harbormq/harbormq.conf"]
