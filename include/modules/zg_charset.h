/* zg_charset.h — charset NAME|off and charset_types, the header effect of nginx's
 * charset module: "; charset=NAME" is added to the Content-Type of responses whose
 * type is one of charset_types and that name no charset yet.  zonegate converts no
 * bodies (source_charset, charset_map and override_charset are refused). */
#ifndef ZG_CHARSET_H
#define ZG_CHARSET_H

#include "zg_conf.h"

typedef struct {
    zg_str_t charset;    /* data NULL: unset; len 0: off */
    zg_str_t *types;     /* charset_types; NULL = inherited (nginx's list at the top) */
    int ntypes;
    int any;             /* charset_types * */
} zg_charset_loc_conf_t;

extern zg_module_t zg_charset_module;

#endif
