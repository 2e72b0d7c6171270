#!/usr/bin/env bash
# Builds a runnable Apicurio Registry (Quarkus fast-jar) from the registry's
# modules on Maven Central, in ~/.cache/kdrill/apicurio-<version>/.
# Why the stand-in repository: this machine is served only some versions of
# the registry's modules (tools/apicurio/README.md lists what was found). The
# 3.0.9 modules name parent pom 3.0.9 and the config-index extension's
# deployment module 3.0.9, neither served; 3.0.7's parent and 3.0.6's
# deployment jar are, and are laid under the 3.0.9 names in a file
# repository the pom declares. Nothing is written by hand but those two poms.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ver=3.0.9
out="${KDRILL_CACHE:-$HOME/.cache/kdrill}/apicurio-$ver"
m2="${MAVEN_REPO:-$HOME/.m2/repository}"
if [[ -f "$out/target/kdrill-apicurio-runtime-$ver-runner.jar" ]]; then
  echo "$out/target/kdrill-apicurio-runtime-$ver-runner.jar"; exit 0
fi
mkdir -p "$out"
cp "$here/pom.xml" "$out/pom.xml"
cd "$out"
get() { mvn -B -q dependency:get -Dartifact="$1" -Dtransitive=false >/dev/null; }
get io.apicurio:apicurio-registry:3.0.7:pom
get io.apicurio:apicurio-registry-config-index-deployment:3.0.6
sr="$out/standin-repo/io/apicurio"
mkdir -p "$sr/apicurio-registry/$ver" "$sr/apicurio-registry-config-index-deployment/$ver"
sed "0,/<version>3.0.7<\/version>/s//<version>$ver<\/version>/" \
  "$m2/io/apicurio/apicurio-registry/3.0.7/apicurio-registry-3.0.7.pom" \
  > "$sr/apicurio-registry/$ver/apicurio-registry-$ver.pom"
cp "$m2/io/apicurio/apicurio-registry-config-index-deployment/3.0.6/apicurio-registry-config-index-deployment-3.0.6.jar" \
  "$sr/apicurio-registry-config-index-deployment/$ver/apicurio-registry-config-index-deployment-$ver.jar"
cat > "$sr/apicurio-registry-config-index-deployment/$ver/apicurio-registry-config-index-deployment-$ver.pom" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.apicurio</groupId>
  <artifactId>apicurio-registry-config-index-deployment</artifactId>
  <version>$ver</version>
  <dependencies>
    <dependency><groupId>io.apicurio</groupId><artifactId>apicurio-registry-config-definitions</artifactId><version>3.0.6</version></dependency>
    <dependency><groupId>io.apicurio</groupId><artifactId>apicurio-registry-config-index</artifactId><version>$ver</version></dependency>
    <dependency><groupId>io.quarkus</groupId><artifactId>quarkus-arc-deployment</artifactId><version>3.15.4</version></dependency>
  </dependencies>
</project>
POM
mvn -B package -DskipTests -Dcheckstyle.skip -Dmaven.javadoc.skip -Dmaven.source.skip \
  -Denforcer.skip -Djacoco.skip \
  -Dquarkus.datasource.postgresql.db-kind=h2 -Dquarkus.datasource.mysql.db-kind=h2 \
  -Dquarkus.datasource.mssql.db-kind=h2 \
  -Dquarkus.index-dependency.sjwt.group-id=io.smallrye \
  -Dquarkus.index-dependency.sjwt.artifact-id=smallrye-jwt > build.log 2>&1 || { tail -5 build.log >&2; exit 1; }
echo "$out/target/kdrill-apicurio-runtime-$ver-runner.jar"
