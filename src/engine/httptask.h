/*
 * httptask.h - HTTP tasks (httptask.c): the requests of http tasks, sent after the
 * commit and run by the loop through libcurl's multi interface; its state is
 * behind eng->http. Loop thread only.
 */
#ifndef ORCH_ENGINE_HTTPTASK_H
#define ORCH_ENGINE_HTTPTASK_H

#include <stddef.h>
#include <stdint.h>

struct engine;
struct exec;

void engine__http_send_pending(struct engine *eng);
void engine__http_cancel_exec(struct engine *eng, struct exec *ex);
void engine__http_run(struct engine *eng);
int64_t engine__http_timeout(const struct engine *eng);
size_t engine__http_active(const struct engine *eng);
void engine__http_free(struct engine *eng);

#endif
