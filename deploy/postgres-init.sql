-- Second database on the same server: the filter database, apart from Airflow's metadata.
CREATE USER cprsub WITH PASSWORD 'cprsub';
CREATE DATABASE cpr_filters OWNER cprsub;
